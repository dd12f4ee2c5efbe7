"""The outage log on a controlled clock: one warning when an outage starts, a reminder at most
every 10 s with the calls answered since, and an info line with the length on recovery."""

from __future__ import annotations

import unittest

import grpc
import tokenmesh_server  # noqa: F401  (puts src/ and gen/ on sys.path)

from tokenmesh_client.outage import OutageReporter


class Unavailable(grpc.RpcError):  # type: ignore[misc]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "failed to connect to all addresses"


class OutageLogTest(unittest.TestCase):
    def test_warns_once_reminds_every_ten_seconds_and_reports_recovery(self) -> None:
        now = [100.0]
        reporter = OutageReporter("closed", 1500, lambda: now[0])
        with self.assertLogs("tokenmesh_client", "INFO") as logs:
            first = reporter.answer(Unavailable(), 3, ["a:1", "b:2"])
            now[0] += 5
            reporter.answer(Unavailable(), 4, ["a:1", "b:2"])  # within 10 s: no line
            now[0] += 5
            reporter.answer(Unavailable(), 1, ["a:1", "b:2"])  # 10 s on: a reminder
            now[0] += 2.5
            reporter.recovered()
            reporter.recovered()  # not down: no line
        self.assertEqual((first.allowed, first.retry_after_ms, first.source), (False, 1500, "fail-closed"))
        self.assertEqual(reporter.fail_closed, 8)
        self.assertEqual(len(logs.output), 3, logs.output)
        self.assertIn(
            "tokenmesh unreachable (UNAVAILABLE: failed to connect to all addresses) at a:1, b:2; failing closed (3 calls)", logs.output[0]
        )
        self.assertIn("(5 calls)", logs.output[1])
        self.assertRegex(logs.output[2], r"^INFO:tokenmesh_client:tokenmesh reachable again after 12500 ms")


if __name__ == "__main__":
    unittest.main()
