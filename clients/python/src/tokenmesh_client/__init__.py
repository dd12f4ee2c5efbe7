"""Python client for tokenmesh, the replicated token-bucket rate limiter."""

from .limiter import Bucket, BucketStatus, Decision, Limiter, TokenmeshError

__all__ = ["Bucket", "BucketStatus", "Decision", "Limiter", "TokenmeshError"]
