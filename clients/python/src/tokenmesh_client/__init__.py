"""Python client for tokenmesh, the replicated token-bucket rate limiter.

``Limiter`` is the synchronous client, ``AsyncLimiter`` the asyncio one (grpc.aio, with batching
and a deny cache), and ``RateLimitMiddleware`` the ASGI middleware for Starlette and FastAPI.
"""

from .aio_limiter import AsyncLimiter
from .asgi import RateLimitMiddleware, key_from
from .decision import Bucket, BucketLike, BucketStatus, Decision, DecisionSource, InlineLimit
from .errors import TokenmeshError
from .limiter import Limiter
from .ratelimit_headers import rate_limit_headers

__all__ = [
    "AsyncLimiter",
    "Bucket",
    "BucketLike",
    "BucketStatus",
    "Decision",
    "DecisionSource",
    "InlineLimit",
    "Limiter",
    "RateLimitMiddleware",
    "TokenmeshError",
    "key_from",
    "rate_limit_headers",
]
