"""Backoff and Retry-After: the waits every external call shares."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from quantbot.retry import Backoff, retry_after


@given(attempt=st.integers(min_value=0, max_value=10_000), seed=st.integers())
def test_backoff_delay_stays_within_the_exponential_ceiling_and_cap(attempt: int, seed: int) -> None:
    b = Backoff(base=0.5, cap=20.0)
    d = b.delay(attempt, random.Random(seed))
    assert 0 <= d <= min(20.0, 0.5 * 2 ** min(attempt, 62))


def test_backoff_yields_the_configured_number_of_waits() -> None:
    assert len(list(Backoff(attempts=4).delays(random.Random(1)))) == 4


def test_backoff_jitters_rather_than_waiting_in_lockstep() -> None:
    rng = random.Random(7)
    assert len({round(Backoff(base=1, cap=60).delay(5, rng), 6) for _ in range(20)}) > 1


def test_retry_after_reads_seconds_dates_and_caps() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "1.5"}) == 1.5
    assert retry_after({"Retry-After": "Thu, 01 Jan 2026 12:00:10 GMT"}, now=now) == 10.0
    assert retry_after({"Retry-After": "Thu, 01 Jan 2026 11:00:00 GMT"}, now=now) == 0.0
    assert retry_after({"Retry-After": "99999"}, cap=60) == 60
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None
