"""The ASGI middleware in real FastAPI and Starlette apps, served by a real uvicorn on 127.0.0.1
and called over HTTP with httpx, against a real tokenmesh server. The expected header values are
the TypeScript client's http-middleware.test.ts's, byte for byte."""

from __future__ import annotations

import asyncio
import json
import socket
from types import TracebackType
from typing import Any, Dict, List, Optional, Type

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tokenmesh_server import AsyncTestCase, address, dead_address, unique

from tokenmesh_client import AsyncLimiter, RateLimitMiddleware, key_from
from tokenmesh_client.asgi import ASGIApp, Scope


class Server:
    address = ""


def setUpModule() -> None:
    Server.address = address()


class _QuietServer(uvicorn.Server):  # type: ignore[misc]  # uvicorn 0.17 ships no type hints
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


class Served:
    """``async with Served(app) as url``: uvicorn serving ``app`` on a port the OS picked."""

    def __init__(self, app: ASGIApp) -> None:
        self.server = _QuietServer(uvicorn.Config(app, lifespan="on", log_level="critical"))

    async def __aenter__(self) -> httpx.AsyncClient:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.task = asyncio.ensure_future(self.server.serve(sockets=[sock]))
        for _ in range(1000):  # ready once its lifespan startup ran and it listens; at most 10 s
            if self.server.started or self.task.done():
                break
            await asyncio.sleep(0.01)
        if not self.server.started:
            raise RuntimeError("uvicorn did not start")
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10)
        return self.client

    async def __aexit__(self, kind: Optional[Type[BaseException]], err: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.client.aclose()
        self.server.should_exit = True
        await self.task


class MiddlewareTest(AsyncTestCase):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.limiter = AsyncLimiter(Server.address, deadline_s=5)
        self.handled = 0
        self.started_up = False

    async def asyncTearDown(self) -> None:
        await self.limiter.close()

    def fastapi_app(self) -> FastAPI:
        app = FastAPI()
        app.add_middleware(RateLimitMiddleware, limiter=self.limiter, policy="api", key=key_from.header("x-api-key"))

        @app.on_event("startup")
        async def startup() -> None:  # the middleware lets the lifespan through
            self.started_up = True

        @app.get("/")
        async def root() -> Dict[str, str]:
            self.handled += 1
            return {"ok": "yes"}

        return app

    def starlette_app(self, tenant: str) -> Starlette:
        def buckets(scope: Scope) -> List[Any]:
            user = dict(scope["headers"]).get(b"x-user", b"").decode()
            return [("api", f"user:{user}"), ("slow", tenant)]

        async def multi(request: Request) -> PlainTextResponse:
            return PlainTextResponse("ok")

        return Starlette(
            routes=[Route("/multi", multi)], middleware=[Middleware(RateLimitMiddleware, limiter=self.limiter, buckets=buckets)]
        )

    async def test_fastapi_gets_ratelimit_fields_on_every_response_and_429_when_empty(self) -> None:
        async with Served(self.fastapi_app()) as http:
            self.assertTrue(self.started_up)
            headers = {"x-api-key": unique("key")}
            for i in range(4, -1, -1):
                ok = await http.get("/", headers=headers)
                self.assertEqual((ok.status_code, ok.json()), (200, {"ok": "yes"}))
                self.assertEqual(ok.headers["ratelimit-policy"], '"api";q=5;w=5')
                self.assertEqual(ok.headers["ratelimit"], f'"api";r={i};t={5 - i}')
                self.assertNotIn("retry-after", ok.headers)
            before = self.handled
            limited = await http.get("/", headers=headers)
            self.assertEqual(limited.status_code, 429)
            self.assertEqual(limited.headers["retry-after"], "1")
            self.assertEqual(limited.headers["ratelimit"], '"api";r=0;t=1')  # t points where Retry-After does
            self.assertEqual(limited.headers["ratelimit-policy"], '"api";q=5;w=5')
            self.assertEqual(limited.headers["content-type"], "application/json; charset=utf-8")
            body = json.loads(limited.content)
            self.assertEqual(limited.content, f'{{"error":"rate limited","retryAfterMs":{body["retryAfterMs"]}}}'.encode())
            self.assertTrue(0 < body["retryAfterMs"] <= 1000, body)
            self.assertEqual(self.handled, before)  # a denied request never reaches its route

    async def test_a_request_without_a_key_goes_through_uncounted(self) -> None:
        async with Served(self.fastapi_app()) as http:
            res = await http.get("/")
            self.assertEqual(res.status_code, 200)
            self.assertNotIn("ratelimit", res.headers)
            self.assertEqual(self.limiter.stats["calls"], 0)

    async def test_starlette_charges_several_buckets_all_or_nothing(self) -> None:
        async with Served(self.starlette_app(unique("tenant"))) as http:
            first = await http.get("/multi", headers={"x-user": unique("u1")})
            self.assertEqual(first.status_code, 200)
            self.assertEqual(first.headers["ratelimit-policy"], '"api";q=5;w=5, "slow";q=2;w=120')
            self.assertEqual(first.headers["ratelimit"], '"api";r=4;t=1, "slow";r=1;t=60')
            self.assertEqual((await http.get("/multi", headers={"x-user": unique("u2")})).status_code, 200)
            third = await http.get("/multi", headers={"x-user": unique("u3")})  # the tenant is empty
            self.assertEqual(third.status_code, 429)
            self.assertGreater(int(third.headers["retry-after"]), 55)
            self.assertRegex(third.headers["ratelimit"], r'^"api";r=5;t=0, "slow";r=0;t=(59|60)$')  # u3's bucket untouched

    async def test_a_limiter_error_is_the_frameworks_500(self) -> None:
        async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
            return PlainTextResponse(f"{type(exc).__name__}: {exc}", status_code=500)

        app = FastAPI(exception_handlers={Exception: server_error})
        app.add_middleware(RateLimitMiddleware, limiter=self.limiter, policy="nope", key=lambda scope: "k")
        app.get("/")(lambda: "ok")
        async with Served(app) as http:
            res = await http.get("/")
            self.assertEqual(res.status_code, 500)
            self.assertIn('TokenmeshError: INVALID_ARGUMENT: decision.buckets[0].policy: unknown policy "nope"', res.text)

    async def test_the_limiters_fail_mode_answers_without_ratelimit_fields(self) -> None:
        for fail_mode, status, retry_after in [("open", 200, None), ("closed", 429, "2")]:
            with self.subTest(fail_mode=fail_mode):
                unreachable = AsyncLimiter(dead_address(), deadline_s=0.3, fail_mode=fail_mode, fail_closed_retry_after_ms=1500)
                app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
                app.add_middleware(RateLimitMiddleware, limiter=unreachable, policy="api", key=lambda scope: "k")
                with self.assertLogs("tokenmesh_client", "WARNING"):
                    async with Served(app) as http:
                        res = await http.get("/")
                await unreachable.close()
                self.assertEqual(res.status_code, status)
                self.assertEqual(res.headers.get("retry-after"), retry_after)
                self.assertNotIn("ratelimit", res.headers)
                self.assertNotIn("ratelimit-policy", res.headers)

    async def test_fields_the_app_sets_itself_are_not_doubled(self) -> None:
        async def own(request: Request) -> PlainTextResponse:
            return PlainTextResponse("ok", headers={"RateLimit": "mine"})

        app = Starlette(routes=[Route("/", own)])
        app.add_middleware(RateLimitMiddleware, limiter=self.limiter, policy="api", key=lambda scope: unique("own"))
        async with Served(app) as http:
            res = await http.get("/")
            self.assertEqual(res.headers.get_list("ratelimit"), ["mine"])
            self.assertEqual(res.headers["ratelimit-policy"], '"api";q=5;w=5')

    async def test_options_that_name_no_bucket_are_refused(self) -> None:
        app = Starlette()
        with self.assertRaisesRegex(TypeError, "give either policy and key, or buckets"):
            RateLimitMiddleware(app, limiter=self.limiter)
        with self.assertRaisesRegex(TypeError, "need both a policy name and a key function"):
            RateLimitMiddleware(app, limiter=self.limiter, policy="api")
        with self.assertRaisesRegex(TypeError, "limiter must be an AsyncLimiter"):
            RateLimitMiddleware(app, limiter=object(), policy="api", key=key_from.ip)  # type: ignore[arg-type]

    def test_key_helpers_read_the_scope(self) -> None:
        scope: Scope = {"type": "http", "client": ("10.1.2.3", 5000), "headers": [(b"x-api-key", b"k1"), (b"x-api-key", b"k2")]}
        self.assertEqual((key_from.ip(scope), key_from.header("X-API-Key")(scope)), ("10.1.2.3", "k1"))
        self.assertEqual((key_from.ip({"type": "http"}), key_from.header("x-api-key")({"headers": [(b"x-api-key", b"")]})), (None, None))

    async def test_websocket_scopes_pass_through_untouched(self) -> None:
        seen: List[str] = []

        async def inner(scope: Scope, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        middleware = RateLimitMiddleware(inner, limiter=self.limiter, policy="api", key=lambda scope: "k")
        await middleware({"type": "websocket", "headers": []}, _never_receive, _never_send)
        self.assertEqual((seen, self.limiter.stats["calls"]), (["websocket"], 0))


async def _never_receive() -> Dict[str, Any]:
    raise AssertionError("not called")


async def _never_send(message: Any) -> None:
    raise AssertionError("not called")


if __name__ == "__main__":
    import unittest

    unittest.main()
