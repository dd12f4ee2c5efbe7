"""The request and answer shapes both limiters share, and their mapping to and from the wire.

Wire durations are uint64 microseconds; answers use whole milliseconds rounded up, so a caller
that waits ``retry_after_ms`` is never early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Tuple, Union

from tokenmesh.v1 import rate_limiter_pb2 as pb

#: Who answered: the service, the local deny cache, or the fail mode when no address answered.
DecisionSource = Literal["server", "deny-cache", "fail-open", "fail-closed"]


@dataclass(frozen=True)
class InlineLimit:
    """A limit sent with the request instead of the policy's (only where the policy allows it)."""

    capacity: int
    refill_tokens: int
    refill_period_ms: int


@dataclass(frozen=True)
class Bucket:
    """One bucket of a decision: a policy from the server's config and a key within it."""

    policy: str
    key: str
    cost: int = 1
    limit: Optional[InlineLimit] = None


#: A Bucket, or a ``(policy, key)`` / ``(policy, key, cost)`` tuple.
BucketLike = Union[Bucket, Tuple[str, str], Tuple[str, str, int]]


@dataclass(frozen=True)
class BucketStatus:
    policy: str
    key: str
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    #: The limit in force for this bucket (the policy's, or the inline one).
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
    #: One status per requested bucket, in request order; empty for fail-open/fail-closed answers
    #: (a deny-cache answer lists only the buckets known to be short).
    buckets: Tuple[BucketStatus, ...] = ()
    source: DecisionSource = "server"


def ms_from_us(us: int) -> int:
    return (us + 999) // 1000


def to_wire(buckets: Sequence[Bucket]) -> pb.Decision:
    return pb.Decision(
        buckets=[
            pb.BucketRequest(
                policy=b.policy,
                key=b.key,
                cost=b.cost,
                limit=None
                if b.limit is None
                else pb.InlineLimit(
                    capacity=b.limit.capacity, refill_tokens=b.limit.refill_tokens, refill_period_ms=b.limit.refill_period_ms
                ),
            )
            for b in buckets
        ]
    )


def from_wire(requested: Sequence[Bucket], result: pb.DecisionResult) -> Decision:
    statuses = tuple(
        BucketStatus(
            policy=b.policy,
            key=b.key,
            remaining=s.remaining,
            retry_after_ms=ms_from_us(s.retry_after_us),
            reset_after_ms=ms_from_us(s.reset_after_us),
            capacity=s.capacity,
            refill_tokens=s.refill_tokens,
            refill_period_ms=s.refill_period_ms,
        )
        for b, s in zip(requested, result.buckets)
    )
    return summarize(result.allowed, ms_from_us(result.retry_after_us), statuses, "server")


def summarize(allowed: bool, retry_after_ms: int, statuses: Tuple[BucketStatus, ...], source: DecisionSource) -> Decision:
    return Decision(
        allowed=allowed,
        remaining=min((s.remaining for s in statuses), default=0),
        retry_after_ms=0 if allowed else retry_after_ms,
        reset_after_ms=max((s.reset_after_ms for s in statuses), default=0),
        buckets=statuses,
        source=source,
    )
