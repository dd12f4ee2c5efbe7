"""The exact RateLimit header field syntax (draft-ietf-httpapi-ratelimit-headers-10): the same
table as the TypeScript client's options-and-headers.test.ts, so both clients write the same bytes."""

from __future__ import annotations

import unittest
from typing import List, Tuple

import tokenmesh_server  # noqa: F401  (puts src/ and gen/ on sys.path)

from tokenmesh_client import BucketStatus, Decision, rate_limit_headers
from tokenmesh_client.ratelimit_headers import retry_after_seconds


def bucket(
    policy: str, remaining: int, retry_after_ms: int, reset_after_ms: int, capacity: int = 100, refill: int = 100, period_ms: int = 60_000
) -> BucketStatus:
    return BucketStatus(policy, "k", remaining, retry_after_ms, reset_after_ms, capacity, refill, period_ms)


def decision(allowed: bool, buckets: List[BucketStatus]) -> Decision:
    return Decision(
        allowed=allowed,
        remaining=min(b.remaining for b in buckets),
        retry_after_ms=0 if allowed else max(b.retry_after_ms for b in buckets),
        reset_after_ms=max(b.reset_after_ms for b in buckets),
        buckets=tuple(buckets),
    )


CASES: List[Tuple[str, Decision, str, str]] = [
    ("100 a minute", decision(True, [bucket("api", 42, 0, 34_500)]), '"api";q=100;w=60', '"api";r=42;t=35'),
    ("5 with 1/s refill", decision(True, [bucket("login", 4, 0, 1000, 5, 1, 1000)]), '"login";q=5;w=5', '"login";r=4;t=1'),
    ("a denial points t at the retry", decision(False, [bucket("api", 0, 1200, 59_000)]), '"api";q=100;w=60', '"api";r=0;t=2'),
    (
        "two policies, the short one on retry",
        decision(False, [bucket("user", 3, 0, 10_000), bucket("tenant", 0, 400, 9_000, 10, 1, 1000)]),
        '"user";q=100;w=60, "tenant";q=10;w=10',
        '"user";r=3;t=10, "tenant";r=0;t=1',
    ),
    (
        "one policy twice gets distinct names",
        decision(True, [bucket("api", 1, 0, 600), bucket("api", 2, 0, 600)]),
        '"api";q=100;w=60, "api-2";q=100;w=60',
        '"api";r=1;t=1, "api-2";r=2;t=1',
    ),
    (
        "names are sf-Strings",
        decision(True, [bucket('we"ird\\näme', 1, 0, 0)]),
        '"we\\"ird\\\\n?me";q=100;w=60',
        '"we\\"ird\\\\n?me";r=1;t=0',
    ),
    ("outside the BMP: one ? per UTF-16 unit", decision(True, [bucket("a\U0001F600", 1, 0, 0)]), '"a??";q=100;w=60', '"a??";r=1;t=0'),
]


class RateLimitHeadersTest(unittest.TestCase):
    def test_fields_match_the_typescript_client(self) -> None:
        for name, d, policy, state in CASES:
            with self.subTest(name):
                self.assertEqual(rate_limit_headers(d), {"RateLimit-Policy": policy, "RateLimit": state})

    def test_no_fields_without_buckets_and_retry_after_is_at_least_one_second(self) -> None:
        self.assertIsNone(rate_limit_headers(Decision(True, 0, 0, 0, (), "fail-open")))
        self.assertEqual(retry_after_seconds(Decision(False, 0, 0, 0, (), "fail-closed")), 1)
        self.assertEqual(retry_after_seconds(Decision(False, 0, 1001, 0, (), "fail-closed")), 2)


if __name__ == "__main__":
    unittest.main()
