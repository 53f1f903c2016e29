"""Per-key request rate limits and row budgets of the predict endpoints (429 past them).

A row budget ("100000/day") bounds how many answers one key can collect — what model
extraction needs by the thousand; a rate limit ("20/second") bounds bursts. Both count per API
key (its public prefix; ``open`` for the unauthenticated loopback client) in this replica's
memory, with the ``limits`` library's sliding-window counters (O(1) per key, no timestamp per
row). With N replicas behind a balancer a key may get up to N times the limit; say so to whoever
sets it.

Examples
--------
>>> q = QueryBudget("2/minute", "5/day")
>>> q.check("ab12", 1) is None, q.check("ab12", 1) is None
(True, True)
>>> over = q.check("ab12", 1)
>>> over.limit, over.retry_after_s > 0
('2 per 1 minute', True)
>>> q.check("cd34", 6).limit   # one request for more rows than the budget holds
'5 per 1 day'
>>> QueryBudget(None, None).check("ab12", 10**9) is None
True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter


@dataclass(frozen=True)
class Exceeded:
    """A limit a request would pass: which one, of which kind, and when to retry."""

    kind: str  # requests | rows
    limit: str
    retry_after_s: int
    window_reset: int  # epoch second the window resets (one audit entry per key and window)


class QueryBudget:
    """The request and row limits of one server (see the module docstring)."""

    def __init__(self, rate_limit: str | None, row_budget: str | None) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._limits: list[tuple[str, RateLimitItem]] = [
            *(("requests", item) for item in (parse_many(rate_limit) if rate_limit else [])),
            *(("rows", item) for item in (parse_many(row_budget) if row_budget else []))]

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return bool(self._limits)

    def check(self, key: str, rows: int) -> Exceeded | None:
        """Count one request of ``rows`` instances for ``key``; the limit it would pass (then
        nothing is counted) or None."""
        for kind, item in self._limits:
            cost = 1 if kind == "requests" else rows
            if cost > item.amount or not self._limiter.test(item, key, cost=cost):
                reset = self._limiter.get_window_stats(item, key).reset_time
                wait = item.get_expiry() if cost > item.amount else reset - time.time()
                return Exceeded(kind, str(item), max(1, math.ceil(wait)), int(reset))
        for kind, item in self._limits:
            self._limiter.hit(item, key, cost=1 if kind == "requests" else rows)
        return None


__all__ = ["Exceeded", "QueryBudget"]
