"""The IETF RateLimit header fields for a decision, per draft-ietf-httpapi-ratelimit-headers-10
(-11 keeps the syntax), written exactly as the TypeScript client writes them:

  RateLimit-Policy: a Structured-Fields List of quota policies, each a String naming the policy
    with parameters q (quota, in requests) and w (window, in seconds);
  RateLimit: a List naming the same policies with r (remaining quota) and t (seconds until the
    quota resets).

A token bucket maps onto that as: q = capacity, w = the time to refill from empty, r = whole
tokens left, t = seconds until the bucket is full. On a denial the draft asks that t point at the
same moment as Retry-After, so a short bucket reports its retry-after instead. Seconds are
rounded up: the draft allows no fractions, and rounding down would invite clients back early.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

from .decision import BucketStatus, Decision


def _seconds(ms: float) -> int:
    return max(0, math.ceil(ms / 1000))


def _sf_string(s: str) -> str:
    """An sf-String (RFC 9651, section 4.1.6): printable ASCII, with `"` and `\\` escaped. Other
    characters become "?", one per UTF-16 unit as in the TypeScript client."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("??" if ord(ch) > 0xFFFF else "?")
    return '"' + "".join(out) + '"'


def _window_seconds(b: BucketStatus) -> int:
    if b.refill_tokens <= 0:
        return 0
    # The same float arithmetic as the TypeScript client, so both round alike.
    return max(1, math.ceil(b.capacity * b.refill_period_ms / b.refill_tokens / 1000))


def rate_limit_headers(decision: Decision) -> Optional[Dict[str, str]]:
    """``{"RateLimit-Policy": ..., "RateLimit": ...}``, or None when the decision carries no
    bucket (a fail-open or fail-closed answer: no bucket state is known)."""
    if not decision.buckets:
        return None
    seen: Dict[str, int] = {}
    policies = []
    states = []
    for b in decision.buckets:
        # The draft forbids two items with the same name; two keys under one policy get a suffix.
        n = seen.get(b.policy, 0) + 1
        seen[b.policy] = n
        name = _sf_string(b.policy if n == 1 else f"{b.policy}-{n}")
        reset_ms = b.retry_after_ms if not decision.allowed and b.retry_after_ms > 0 else b.reset_after_ms
        policies.append(f"{name};q={b.capacity};w={_window_seconds(b)}")
        states.append(f"{name};r={b.remaining};t={_seconds(reset_ms)}")
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def retry_after_seconds(decision: Decision) -> int:
    """Retry-After in delay-seconds for a denial: at least 1, since 0 invites an immediate retry."""
    return max(1, _seconds(decision.retry_after_ms))
