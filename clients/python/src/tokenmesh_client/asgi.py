"""ASGI middleware (Starlette, FastAPI, or any ASGI 3 app): charges each HTTP request to its
bucket(s), sets the RateLimit header fields on every response that carries a decision, and
answers 429 with Retry-After when denied. The behaviour and the bytes on the wire are the
TypeScript client's Express and Fastify middleware's:

* allowed: the app runs; its response gets ``RateLimit-Policy`` and ``RateLimit``;
* denied: the app does not run; ``429``, both fields, ``Retry-After`` and the JSON body
  ``{"error":"rate limited","retryAfterMs":N}``;
* tokenmesh unreachable: the limiter's fail mode answers. Fail-open lets the request through and
  fail-closed answers ``429`` with ``Retry-After``, both without RateLimit fields;
* a key function that returns None lets the request through uncounted;
* an error from the limiter (an unknown policy, say) propagates, which the framework answers
  with a 500, as Express's ``next(err)`` does.

Only ``http`` scopes are limited; websocket and lifespan scopes pass through untouched. It is a
pure ASGI middleware with no framework import.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, List, MutableMapping, Optional, Sequence, Tuple

from .aio_limiter import AsyncLimiter
from .decision import Bucket, BucketLike, Decision
from .ratelimit_headers import rate_limit_headers, retry_after_seconds

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = List[Tuple[bytes, bytes]]


class _KeyFrom:
    """Ready-made key functions; each takes the ASGI scope."""

    @staticmethod
    def ip(scope: Scope) -> Optional[str]:
        """The client address as the ASGI server reports it. Behind a proxy, have the server
        rewrite it from X-Forwarded-For first (uvicorn's ``--proxy-headers``)."""
        client = scope.get("client")
        return str(client[0]) if client else None

    @staticmethod
    def header(name: str) -> Callable[[Scope], Optional[str]]:
        """A request header, e.g. ``key_from.header("x-api-key")``; the first value if repeated."""
        wanted = name.lower().encode("latin-1")

        def key(scope: Scope) -> Optional[str]:
            for k, v in scope.get("headers", ()):
                if k.lower() == wanted:
                    return v.decode("latin-1") or None
            return None

        return key


key_from = _KeyFrom()


def _default_body(decision: Decision) -> str:
    # The same bytes as JSON.stringify in the TypeScript middleware.
    return json.dumps({"error": "rate limited", "retryAfterMs": decision.retry_after_ms}, separators=(",", ":"))


class RateLimitMiddleware:
    """``app.add_middleware(RateLimitMiddleware, limiter=limiter, policy="api", key=key_from.ip)``,
    or ``buckets=lambda scope: [...]`` for several buckets per request, all-or-nothing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: AsyncLimiter,
        policy: Optional[str] = None,
        key: Optional[Callable[[Scope], Optional[str]]] = None,
        buckets: Optional[Callable[[Scope], Optional[Sequence[BucketLike]]]] = None,
        denied_body: Callable[[Decision], str] = _default_body,
    ):
        if (buckets is None) == (key is None and policy is None):
            raise TypeError("RateLimitMiddleware: give either policy and key, or buckets")
        if buckets is None and (policy is None or key is None):
            raise TypeError("RateLimitMiddleware: policy and key need both a policy name and a key function")
        if not isinstance(limiter, AsyncLimiter):
            raise TypeError(f"RateLimitMiddleware: limiter must be an AsyncLimiter, got {type(limiter).__name__}")
        self.app = app
        self._limiter = limiter
        self._policy = policy
        self._key = key
        self._buckets = buckets
        self._denied_body = denied_body

    def _chosen(self, scope: Scope) -> Optional[Sequence[BucketLike]]:
        if self._buckets is not None:
            return self._buckets(scope)
        assert self._key is not None and self._policy is not None  # checked in __init__
        k = self._key(scope)
        return None if k is None else [Bucket(self._policy, k)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = self._chosen(scope)
        if not chosen:
            await self.app(scope, receive, send)
            return
        decision = await self._limiter.consume_many(chosen)
        fields = rate_limit_headers(decision) or {}
        headers: Headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields.items()]
        if decision.allowed:
            await self.app(scope, receive, _adding(headers, send) if headers else send)
            return
        body = self._denied_body(decision).encode("utf-8")
        headers += [
            (b"retry-after", str(retry_after_seconds(decision)).encode("latin-1")),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode("latin-1")),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _adding(headers: Headers, send: Send) -> Send:
    """A send that adds ``headers`` to the response start, unless the app set those fields
    itself (as a route could overwrite them after Express's middleware set them)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            own = list(message.get("headers", ()))
            present = {k.lower() for k, _ in own}
            message = {**message, "headers": own + [(k, v) for k, v in headers if k not in present]}
        await send(message)

    return wrapped
