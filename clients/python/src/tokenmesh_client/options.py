"""Constructor checks both limiters share: a TypeError naming the bad option, at construction,
never a surprise on the first call (the TypeScript client's rule and messages)."""

from __future__ import annotations

from typing import List, Optional, Sequence

from .outage import FailMode


def addresses_of(who: str, address: Optional[str], addresses: Optional[Sequence[str]]) -> List[str]:
    if (address is None) == (addresses is None):
        raise TypeError(f"{who}: give exactly one of address or addresses")
    targets = [address] if address is not None else list(addresses or [])
    if not targets:
        raise TypeError(f"{who}: addresses must not be empty")
    for a in targets:
        if not isinstance(a, str) or not a:
            raise TypeError(f"{who}: address must be a non-empty 'host:port', got {a!r}")
    return targets


def integer(who: str, name: str, value: int, low: int, high: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise TypeError(f"{who}: {name} must be an integer in {low}..{high}, got {value!r}")
    return value


def seconds(who: str, name: str, value: float, low: float, high: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high):
        raise TypeError(f"{who}: {name} must be a number of seconds in {low:g}..{high:g}, got {value!r}")
    return float(value)


def positive_deadline(who: str, deadline_s: float) -> float:
    if not (isinstance(deadline_s, (int, float)) and not isinstance(deadline_s, bool) and 0 < deadline_s <= 3600):
        raise TypeError(f"{who}: deadline_s must be a number in (0, 3600], got {deadline_s!r}")
    return float(deadline_s)


def fail_mode_of(who: str, mode: str) -> FailMode:
    if mode == "open":
        return "open"
    if mode == "closed":
        return "closed"
    raise TypeError(f"{who}: fail_mode must be 'open' or 'closed', got {mode!r}")
