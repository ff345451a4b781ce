"""Retry policy shared by every external call: jittered exponential backoff and Retry-After.

One place decides how long to wait before trying a peer again, so RPC pools, REST clients,
price sources and notifiers all back off the same way and all honour HTTP 429 / Retry-After.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses after which the same request may be tried again (possibly elsewhere)."""


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits uniform(0, min(cap, base * 2**n)) seconds."""

    base: float = 0.2
    cap: float = 30.0
    attempts: int | None = None
    """How many waits `delays()` yields; None for an endless reconnect loop."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 62)))
        return (rng or _rng).uniform(0, ceiling)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        attempt = 0
        while self.attempts is None or attempt < self.attempts:
            yield self.delay(attempt, rng)
            attempt += 1


_rng = random.Random()  # noqa: S311  (jitter, not cryptography)


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None, cap: float = 300.0) -> float | None:
    """Seconds the peer asked us to wait (`Retry-After` as seconds or an HTTP date), capped; None if absent."""
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, cap))
