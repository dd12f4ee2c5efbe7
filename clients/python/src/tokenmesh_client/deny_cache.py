"""Remembers buckets the service just denied, so a caller hammering a denied key is answered
locally until its retry-after passes, at no RPC.

This is sound because a bucket refills no faster than its rate: one that needs T ms to hold
``cost`` tokens cannot hold ``cost`` or more sooner, whichever replica is asked. A smaller cost
might fit sooner, so it goes to the service. An inline limit is part of a bucket's identity here,
since the argument holds for one rate only.

Bounded: at ``max_entries`` the oldest entry is dropped, so memory stays flat under a
key-spraying abuser; the worst a dropped entry costs is one RPC.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from .decision import Bucket, BucketStatus, Decision, summarize

_Id = Tuple[str, str, Optional[Tuple[int, int, int]]]


class _Entry(NamedTuple):
    #: Clock time (ms) at which the bucket can hold ``cost`` again.
    until_ms: float
    cost: int
    status: BucketStatus


def _id_of(b: Bucket) -> _Id:
    limit = None if b.limit is None else (b.limit.capacity, b.limit.refill_tokens, b.limit.refill_period_ms)
    return (b.policy, b.key, limit)


class DenyCache:
    def __init__(self, max_entries: int, clock_ms: Callable[[], float]):
        self._max = max_entries
        self._now = clock_ms
        self._entries: OrderedDict[_Id, _Entry] = OrderedDict()
        self.hits = 0

    @property
    def size(self) -> int:
        return len(self._entries)

    def remember(self, requested: Sequence[Bucket], decision: Decision) -> None:
        """Records the buckets of a denied decision that were short of tokens."""
        if self._max == 0 or decision.allowed:
            return
        now = self._now()
        for asked, status in zip(requested, decision.buckets):
            if status.retry_after_ms <= 0:
                continue
            id_ = _id_of(asked)
            self._entries.pop(id_, None)  # re-inserted at the young end
            self._entries[id_] = _Entry(now + status.retry_after_ms, asked.cost, status)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def check(self, requested: Sequence[Bucket]) -> Optional[Decision]:
        """A local denial if any requested bucket is known to be short until later than now.

        Its ``buckets`` lists only those known-short buckets, as last reported by the service.
        """
        if not self._entries:
            return None
        now = self._now()
        retry_after_ms = 0
        short: List[BucketStatus] = []
        for asked in requested:
            id_ = _id_of(asked)
            entry = self._entries.get(id_)
            if entry is None:
                continue
            if now >= entry.until_ms:
                del self._entries[id_]
                continue
            if asked.cost < entry.cost:
                continue
            wait = math.ceil(entry.until_ms - now)
            retry_after_ms = max(retry_after_ms, wait)
            short.append(dataclasses.replace(entry.status, retry_after_ms=wait))
        if not short:
            return None
        self.hits += 1
        return summarize(False, retry_after_ms, tuple(short), "deny-cache")
