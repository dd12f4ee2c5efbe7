"""The one error type the clients raise, and what a failed RPC means for its callers.

Errors that say the request is wrong (bad argument, unknown method, no permission) raise: a fail
mode would hide a configuration mistake forever. Errors that say the service could not answer
(unavailable, deadline, overload, internal) are answered by the fail mode instead, so an outage
costs at most one deadline and never a hang.
"""

from __future__ import annotations

import re

import grpc

CALLER_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)

# The server names a bad decision by its index in the request; a caller sent one decision.
_DECISION_INDEX = re.compile(r"^decisions\[\d+\]")


class TokenmeshError(Exception):
    """A call the service (or the client's own checks) refused: ``code`` is the gRPC status, the
    message names the field and the limit."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def invalid_argument(field: str, problem: str) -> TokenmeshError:
    return TokenmeshError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


def service_could_not_answer(err: grpc.RpcError) -> bool:
    """True when the fail mode should answer instead of an error."""
    return err.code() not in CALLER_ERRORS


def refused(err: grpc.RpcError) -> TokenmeshError:
    """The caller's error for an RPC the service refused, naming the field as the caller knows it."""
    return TokenmeshError(err.code(), _DECISION_INDEX.sub("decision", err.details() or "", count=1))


def never_sent(err: grpc.RpcError) -> bool:
    """True when gRPC C-core failed the call before any connection carried it, so resending a
    Consume cannot take its tokens twice."""
    return err.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect to all addresses" in (err.details() or "")


class DeadlineSpent(grpc.RpcError):  # type: ignore[misc]  # grpc ships no type hints
    """The deadline ran out between attempts, so no RPC error is left to report."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "deadline spent before every address could be tried"
