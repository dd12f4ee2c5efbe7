"""What the client can check alone, before a call is sent or joins a batch.

The service refuses a whole request if one decision in it is malformed, so a bad call caught
here cannot delay or fail the calls batched with it. Limits that depend on the server's config
(an unknown policy, a key too long, a cost above capacity) are still checked there. Field names
and limits are the TypeScript client's.
"""

from __future__ import annotations

from typing import Iterable, Set, Tuple

from .decision import Bucket, BucketLike
from .errors import invalid_argument

MAX_BUCKETS_PER_DECISION = 16
MAX_UINT32 = 0xFFFF_FFFF
_MAX_LIMIT = 2**53 - 1


def _positive_int(v: object, top: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= top


def _bucket(b: object, field: str) -> Bucket:
    if isinstance(b, tuple) and len(b) in (2, 3):
        b = Bucket(*b)
    if not isinstance(b, Bucket):
        raise invalid_argument(field, f"must be a Bucket or a (policy, key[, cost]) tuple, got {b!r}")
    if not isinstance(b.policy, str) or not b.policy:
        raise invalid_argument(f"{field}.policy", "must be a non-empty string")
    if not isinstance(b.key, str) or not b.key:
        raise invalid_argument(f"{field}.key", "must be a non-empty string")
    if not _positive_int(b.cost, MAX_UINT32):
        raise invalid_argument(f"{field}.cost", f"must be an integer in 1..{MAX_UINT32}, got {b.cost!r}")
    if b.limit is not None:
        for name in ("capacity", "refill_tokens", "refill_period_ms"):
            value = getattr(b.limit, name, None)
            if not _positive_int(value, _MAX_LIMIT):
                raise invalid_argument(f"{field}.limit.{name}", f"must be a positive integer, got {value!r}")
    return b


def checked_decision(buckets: Iterable[BucketLike]) -> Tuple[Bucket, ...]:
    """The buckets of one decision, or a TokenmeshError (INVALID_ARGUMENT) naming the bad field."""
    if isinstance(buckets, (str, bytes, Bucket)):
        raise invalid_argument("buckets", f"must be a list of buckets, got {buckets!r}")
    items = list(buckets)
    if not 1 <= len(items) <= MAX_BUCKETS_PER_DECISION:
        raise invalid_argument("buckets", f"must hold 1..{MAX_BUCKETS_PER_DECISION} buckets, got {len(items)}")
    out = []
    seen: Set[Tuple[str, str]] = set()
    for i, item in enumerate(items):
        field = "request" if len(items) == 1 else f"buckets[{i}]"
        b = _bucket(item, field)
        if (b.policy, b.key) in seen:
            raise invalid_argument(field, "names the same bucket twice; put the total cost on one entry")
        seen.add((b.policy, b.key))
        out.append(b)
    return tuple(out)
