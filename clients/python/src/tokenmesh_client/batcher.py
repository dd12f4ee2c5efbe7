"""Coalesces concurrent calls into one request.

A call joins the open batch; the batch is sent when it reaches ``max_size`` or when its window
closes, whichever is first, and each caller gets its own answer back. A window of 0 closes on
the event loop's next pass (``loop.call_soon``): every call made by the tasks that were ready
together (requests that arrived together, a ``gather``) shares an RPC, at a delay well under a
millisecond. A positive window uses ``loop.call_later``.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, List, Optional, Sequence, Set, Tuple, TypeVar, Union

T = TypeVar("T")
R = TypeVar("R")

#: One answer per item: the value, or the exception to raise for that caller.
Settled = Union[R, BaseException]


class Batcher(Generic[T, R]):
    def __init__(
        self,
        window_s: float,
        max_size: int,
        send: Callable[[Sequence[T]], Awaitable[Sequence[Settled[R]]]],
    ):
        """``send`` must answer with exactly one entry per item, in order, and should not raise."""
        self._window_s = window_s
        self._max_size = max_size
        self._send = send
        self._open: List[Tuple[T, asyncio.Future[R]]] = []
        self._window: Optional[asyncio.Handle] = None
        self._in_flight: Set[asyncio.Task[None]] = set()
        #: Batches sent so far (for tests and stats).
        self.batches_sent = 0

    @property
    def max_size(self) -> int:
        return self._max_size

    def lower_max_size(self, size: int) -> None:
        """Lowers the size cap for batches opened from now on (e.g. to a server's smaller limit)."""
        self._max_size = max(1, min(self._max_size, size))

    def add(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._open.append((item, future))
        if len(self._open) >= self._max_size:
            self.flush()
        elif self._window is None:
            if self._window_s <= 0:
                self._window = loop.call_soon(self.flush)
            else:
                self._window = loop.call_later(self._window_s, self.flush)
        return future

    def flush(self) -> None:
        """Sends the open batch now, if any."""
        if self._window is not None:
            self._window.cancel()
            self._window = None
        batch, self._open = self._open, []
        if not batch:
            return
        self.batches_sent += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self) -> None:
        """Flushes and waits until every batch sent so far has been answered."""
        self.flush()
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run(self, batch: Sequence[Tuple[T, asyncio.Future[R]]]) -> None:
        settled: Sequence[Settled[R]]
        try:
            settled = await self._send([item for item, _ in batch])
        except Exception as err:  # a bug in send must still answer every caller
            settled = [err] * len(batch)
        for i, (_, future) in enumerate(batch):
            if future.done():  # the caller was cancelled; its answer has nowhere to go
                continue
            if i >= len(settled):
                future.set_exception(RuntimeError(f"batch answered {len(settled)} of {len(batch)} calls"))
                continue
            outcome = settled[i]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
