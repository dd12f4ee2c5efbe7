"""The fail mode's answers, and the log lines and counters of an outage.

One warning when an outage starts, a reminder at most every 10 s while it lasts (with how many
calls the fail mode answered since the last line), and an info line with its length on recovery.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Literal, Optional, Sequence

import grpc

from .decision import Decision, summarize

FailMode = Literal["open", "closed"]

log = logging.getLogger("tokenmesh_client")

#: While an outage lasts, a reminder goes to the log at most this often.
REMIND_EVERY_S = 10.0


class OutageReporter:
    def __init__(self, mode: FailMode, retry_after_ms: int, clock: Callable[[], float]):
        self.mode = mode
        self._retry_after_ms = retry_after_ms
        self._clock = clock
        self.fail_open = 0
        self.fail_closed = 0
        self._down_since: Optional[float] = None
        self._last_log = 0.0
        self._answered_since_log = 0
        # The synchronous client answers from many threads.
        self._lock = threading.Lock()

    def answer(self, err: grpc.RpcError, count: int, addresses: Sequence[str]) -> Decision:
        """The answer for ``count`` calls whose RPC failed with ``err``."""
        now = self._clock()
        with self._lock:
            if self.mode == "open":
                self.fail_open += count
            else:
                self.fail_closed += count
            self._answered_since_log += count
            should_log = self._down_since is None or now - self._last_log >= REMIND_EVERY_S
            if should_log:
                calls, self._answered_since_log = self._answered_since_log, 0
                self._last_log = now
                if self._down_since is None:
                    self._down_since = now
        if should_log:
            log.warning(
                "tokenmesh unreachable (%s: %s) at %s; failing %s (%d calls)",
                err.code().name,
                err.details(),
                ", ".join(addresses),
                self.mode,
                calls,
            )
        if self.mode == "open":
            return summarize(True, 0, (), "fail-open")
        return summarize(False, self._retry_after_ms, (), "fail-closed")

    def recovered(self) -> None:
        """Called after every answered RPC: ends an outage, logging how long it lasted."""
        if self._down_since is None:
            return
        with self._lock:
            down_since, self._down_since = self._down_since, None
            calls, self._answered_since_log = self._answered_since_log, 0
        if down_since is not None:
            log.info(
                "tokenmesh reachable again after %.0f ms (%d calls answered by the fail mode since the last line)",
                (self._clock() - down_since) * 1000,
                calls,
            )
