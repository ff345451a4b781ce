"""Clocks: aware UTC time; simulated time wakes sleepers only when advanced past them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from quantbot.clock import SimClock, WallClock


def test_wall_clock_is_timezone_aware_utc() -> None:
    assert WallClock().now().tzinfo is UTC


def test_sim_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2026, 1, 1))  # noqa: DTZ001  (the point of the test)


async def test_sim_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = SimClock(datetime(2026, 5, 1, tzinfo=UTC))
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 10)), asyncio.create_task(sleeper("early", 2))]
    await asyncio.sleep(0)
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.set(datetime(2026, 5, 1, 0, 0, 30, tzinfo=UTC))
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.now() - datetime(2026, 5, 1, tzinfo=UTC) == timedelta(seconds=30)
    assert clock.monotonic() == 30


def test_sim_clock_never_goes_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        SimClock().advance(-1)
