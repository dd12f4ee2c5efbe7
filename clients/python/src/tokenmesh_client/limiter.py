"""A thin, synchronous wrapper over the generated tokenmesh stubs: one call per decision.

Unlike the TypeScript client there is no batching (a synchronous call has nobody to share an RPC
with) and no deny cache; deadlines, failover and the fail mode work the same way:

* Consume is not idempotent, so it moves to the next address only when gRPC could not connect
  at all ("failed to connect to all addresses"): the request was never sent, so resending it
  cannot take tokens twice. A deadline or a connection lost mid-call is not resent.
* Query takes no token and fails over on any UNAVAILABLE.
* When the service cannot answer (unavailable, deadline, overload, internal error) the call is
  answered by ``fail_mode`` ("open" allows, "closed" denies), counted in ``stats`` and logged.
  Errors that say the request is wrong (INVALID_ARGUMENT and the like) raise TokenmeshError.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

import grpc

from tokenmesh.v1 import rate_limiter_pb2 as pb
from tokenmesh.v1 import rate_limiter_pb2_grpc as stubs

log = logging.getLogger("tokenmesh_client")

_CALLER_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
_REMIND_EVERY_S = 10.0


class TokenmeshError(Exception):
    """A call the service refused: ``code`` is the gRPC status, the message names the field."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Bucket:
    policy: str
    key: str
    cost: int = 1


@dataclass(frozen=True)
class BucketStatus:
    policy: str
    key: str
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    capacity: int
    refill_tokens: int
    refill_period_ms: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: The fewest tokens left among the decision's buckets.
    remaining: int
    #: Milliseconds until the decision could succeed (rounded up, so waiting it is never early).
    retry_after_ms: int
    #: Milliseconds until every bucket is full again.
    reset_after_ms: int
    buckets: tuple = field(default_factory=tuple)
    #: "server", "fail-open" or "fail-closed".
    source: str = "server"


def _ms(us: int) -> int:
    return (us + 999) // 1000


def _never_sent(err: grpc.RpcError) -> bool:
    return err.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect to all addresses" in (err.details() or "")


BucketLike = Union[Bucket, tuple]


class Limiter:
    """``Limiter("127.0.0.1:50051").consume("api", "user-42")`` -> Decision."""

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        addresses: Optional[Sequence[str]] = None,
        deadline_s: float = 0.25,
        fail_mode: str = "open",
        fail_closed_retry_after_ms: int = 1000,
        credentials: Optional[grpc.ChannelCredentials] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if (address is None) == (addresses is None):
            raise TypeError("Limiter: give exactly one of address or addresses")
        targets = [address] if address is not None else list(addresses or [])
        if not targets or not all(isinstance(a, str) and a for a in targets):
            raise TypeError(f"Limiter: addresses must be non-empty 'host:port' strings, got {targets!r}")
        if not (isinstance(deadline_s, (int, float)) and 0 < deadline_s <= 3600):
            raise TypeError(f"Limiter: deadline_s must be in (0, 3600], got {deadline_s!r}")
        if fail_mode not in ("open", "closed"):
            raise TypeError(f"Limiter: fail_mode must be 'open' or 'closed', got {fail_mode!r}")
        self.addresses = targets
        self._deadline_s = float(deadline_s)
        self._fail_mode = fail_mode
        self._fail_closed_retry_after_ms = int(fail_closed_retry_after_ms)
        self._clock = clock
        self._channels = [
            grpc.secure_channel(a, credentials) if credentials is not None else grpc.insecure_channel(a) for a in targets
        ]
        self._stubs = [stubs.RateLimiterStub(c) for c in self._channels]
        self._preferred = 0
        self._down_since: Optional[float] = None
        self._last_log = 0.0
        self.stats = {"calls": 0, "rpcs": 0, "failovers": 0, "fail_open": 0, "fail_closed": 0}
        # Calls may come from many threads: counters and outage state change under this lock.
        self._lock = threading.Lock()

    # -- public calls ---------------------------------------------------------------------------

    def consume(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Takes ``cost`` tokens from one bucket."""
        return self.consume_many([Bucket(policy, key, cost)])

    def consume_many(self, buckets: Iterable[BucketLike]) -> Decision:
        """Takes tokens from every bucket, or from none (1 to 16 distinct buckets)."""
        return self._decide("Consume", [self._bucket(b) for b in buckets])

    def query(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Answers as consume would, without taking any token."""
        return self.query_many([Bucket(policy, key, cost)])

    def query_many(self, buckets: Iterable[BucketLike]) -> Decision:
        return self._decide("Query", [self._bucket(b) for b in buckets])

    def close(self) -> None:
        for c in self._channels:
            c.close()

    def __enter__(self) -> "Limiter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _bucket(b: BucketLike) -> Bucket:
        return b if isinstance(b, Bucket) else Bucket(*b)

    def _decide(self, method: str, buckets: Sequence[Bucket]) -> Decision:
        self._count("calls")
        request = [pb.Decision(buckets=[pb.BucketRequest(policy=b.policy, key=b.key, cost=b.cost) for b in buckets])]
        deadline = self._clock() + self._deadline_s
        try:
            response = self._with_failover(method, request, deadline)
        except grpc.RpcError as err:
            if err.code() in _CALLER_ERRORS:
                raise TokenmeshError(err.code(), (err.details() or "").replace("decisions[0]", "decision", 1)) from None
            return self._fail(err)
        if self._down_since is not None:
            with self._lock:
                down_since, self._down_since = self._down_since, None
            if down_since is not None:
                log.info("tokenmesh reachable again after %.0f ms", (self._clock() - down_since) * 1000)
        result = response.results[0]
        statuses = tuple(
            BucketStatus(
                b.policy, b.key, s.remaining, _ms(s.retry_after_us), _ms(s.reset_after_us), s.capacity, s.refill_tokens, s.refill_period_ms
            )
            for b, s in zip(buckets, result.buckets)
        )
        return Decision(
            allowed=result.allowed,
            remaining=min((s.remaining for s in statuses), default=0),
            retry_after_ms=0 if result.allowed else _ms(result.retry_after_us),
            reset_after_ms=max((s.reset_after_ms for s in statuses), default=0),
            buckets=statuses,
        )

    def _with_failover(self, method: str, decisions: list, deadline: float):
        n = len(self._stubs)
        last: Optional[grpc.RpcError] = None
        for attempt in range(n):
            index = (self._preferred + attempt) % n
            timeout = deadline - self._clock()
            if timeout <= 0:
                break
            if attempt > 0:
                self._count("failovers")
            self._count("rpcs")
            stub = self._stubs[index]
            try:
                if method == "Consume":
                    response = stub.Consume(pb.ConsumeRequest(decisions=decisions), timeout=timeout)
                else:
                    response = stub.Query(pb.QueryRequest(decisions=decisions), timeout=timeout)
                self._preferred = index
                return response
            except grpc.RpcError as err:
                safe = _never_sent(err) if method == "Consume" else err.code() == grpc.StatusCode.UNAVAILABLE
                if not safe:
                    raise
                last = err
        if last is None:
            raise _DeadlineSpent()
        raise last

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _fail(self, err: grpc.RpcError) -> Decision:
        now = self._clock()
        with self._lock:
            self.stats["fail_open" if self._fail_mode == "open" else "fail_closed"] += 1
            should_log = self._down_since is None or now - self._last_log >= _REMIND_EVERY_S
            if should_log:
                self._last_log = now
                if self._down_since is None:
                    self._down_since = now
        if should_log:
            log.warning(
                "tokenmesh unreachable (%s: %s) at %s; failing %s",
                err.code().name,
                err.details(),
                ", ".join(self.addresses),
                self._fail_mode,
            )
        if self._fail_mode == "open":
            return Decision(True, 0, 0, 0, (), "fail-open")
        return Decision(False, 0, self._fail_closed_retry_after_ms, 0, (), "fail-closed")


class _DeadlineSpent(grpc.RpcError):
    """The deadline ran out between failover attempts (no RPC left to raise)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "deadline spent before every address could be tried"
