"""FilterStage: verdicts in config order; a failing, hanging or disabled filter fails (fail closed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog.testing

from quantbot.api import Filter, PluginConfig
from quantbot.bus import EventBus
from quantbot.candidates import TokenCandidate
from quantbot.clock import SimClock
from quantbot.events import Event, FilterVerdict, PluginDisabled
from quantbot.filtering import FilterStage
from quantbot.testing import make_plugin, token_candidate
from quantbot_filters.blocklist import BlocklistFilter


async def run_stage(
    filters: list[object],
    launches: int,
    *,
    max_failures: int = 5,
    filter_timeout: float = 1.0,
    evaluate_all: bool = True,
) -> tuple[list[tuple[FilterVerdict, ...]], list[Event]]:
    out: list[Event] = []
    judged: list[tuple[FilterVerdict, ...]] = []

    async def record(e: Event) -> None:
        out.append(e)

    async with EventBus(clock=SimClock(), max_failures=max_failures) as bus:
        bus.subscribe(["plugin.disabled"], record, name="rec")
        stage = FilterStage(
            bus=bus,
            filters=filters,  # type: ignore[arg-type]
            timeout=filter_timeout,
            evaluate_all=evaluate_all,
        )
        await stage.start()
        for i in range(launches):
            judged.append(await stage.judge(token_candidate(mint=f"M{i}", name="Fine")))
        await bus.drain(5)
        await stage.stop()
    return judged, out


async def test_every_filter_judges_in_config_order() -> None:
    a = make_plugin(BlocklistFilter, id="a", name_patterns=["rug"])
    b = make_plugin(BlocklistFilter, id="b", creators=["X"])
    ([verdicts], _) = await run_stage([a, b], 1)
    assert [(v.filter, v.passed) for v in verdicts] == [("a", True), ("b", True)]


async def test_a_failing_verdict_carries_its_reason_and_measured_value() -> None:
    a = make_plugin(BlocklistFilter, id="a", name_patterns=["fine"])
    b = make_plugin(BlocklistFilter, id="b")
    ([verdicts], _) = await run_stage([a, b], 1)
    assert [(v.filter, v.passed, v.reason, v.value) for v in verdicts] == [
        ("a", False, "name matches /fine/", "Fine"),
        ("b", True, "", ""),
    ]


async def test_without_evaluate_all_the_chain_stops_at_the_first_failure() -> None:
    a = make_plugin(BlocklistFilter, id="a", name_patterns=["fine"])
    b = make_plugin(BlocklistFilter, id="b")
    ([verdicts], _) = await run_stage([a, b], 1, evaluate_all=False)
    assert [(v.filter, v.passed) for v in verdicts] == [("a", False)]
    ([verdicts], _) = await run_stage([b, a], 1, evaluate_all=False)
    assert [(v.filter, v.passed) for v in verdicts] == [("b", True), ("a", False)]


async def test_a_raising_filter_rejects_and_is_disabled_after_repeated_failures(plugin_site: Path) -> None:
    from qb_testplugins import ExplodingFilter  # type: ignore[import-not-found]

    boom = ExplodingFilter(id="boom", config=ExplodingFilter.Config())
    ok = make_plugin(BlocklistFilter, id="ok")
    judged, events = await run_stage([boom, ok], 4, max_failures=2)
    assert all(not v[0].passed for v in judged), "no token passes while a filter is broken"
    reasons = [v[0].reason for v in judged]
    assert reasons == [
        "filter error: RuntimeError",
        "filter error: RuntimeError",
        "filter disabled after repeated failures",
        "filter disabled after repeated failures",
    ]
    (disabled,) = [e for e in events if isinstance(e, PluginDisabled)]
    assert (disabled.group, disabled.plugin, disabled.failures) == ("filters", "boom", 2)


async def test_a_hanging_filter_times_out_and_rejects(plugin_site: Path) -> None:
    from qb_testplugins import HangingFilter  # type: ignore[import-not-found]

    hang = HangingFilter(id="hang", config=HangingFilter.Config())
    ([verdicts], _) = await run_stage([hang], 1, filter_timeout=0.05)
    assert not verdicts[0].passed
    assert verdicts[0].reason == "filter error: TimeoutError"


class LeaksCancellation(Filter):
    """Awaits a task someone else cancelled and lets its CancelledError out."""

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        inner = asyncio.ensure_future(asyncio.sleep(10))
        inner.cancel()
        await inner
        raise AssertionError("unreachable: awaiting a cancelled task raises")


@pytest.mark.parametrize("evaluate_all", [True, False])
async def test_a_filter_leaking_a_cancellation_rejects_and_is_disabled_after_repeated_failures(
    evaluate_all: bool,
) -> None:
    leaky = LeaksCancellation(id="leaky", config=PluginConfig())
    ok = make_plugin(BlocklistFilter, id="ok")
    judged, events = await run_stage([leaky, ok], 4, max_failures=2, evaluate_all=evaluate_all)
    assert [v[0].reason for v in judged] == [
        "filter error: CancelledError",
        "filter error: CancelledError",
        "filter disabled after repeated failures",
        "filter disabled after repeated failures",
    ]
    (disabled,) = [e for e in events if isinstance(e, PluginDisabled)]
    assert (disabled.plugin, disabled.failures) == ("leaky", 2)


class Hangs(Filter):
    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


@pytest.mark.parametrize("evaluate_all", [True, False])
async def test_cancelling_the_judgement_still_cancels_it_while_a_filter_runs(evaluate_all: bool) -> None:
    async with EventBus(clock=SimClock()) as bus:
        stage = FilterStage(
            bus=bus, filters=[Hangs(id="hang", config=PluginConfig())], timeout=60, evaluate_all=evaluate_all
        )
        judging = asyncio.create_task(stage.judge(token_candidate(mint="M0")))
        await asyncio.sleep(0.05)
        judging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await judging
        assert not bus.health.disabled


async def test_the_effective_filter_chain_is_logged_at_start_and_an_empty_one_warned_about() -> None:
    async with EventBus(clock=SimClock()) as bus:
        with structlog.testing.capture_logs() as logs:
            await FilterStage(bus=bus, filters=[make_plugin(BlocklistFilter, id="a")], timeout=1).start()
            await FilterStage(bus=bus, filters=[], timeout=1).start()
    chain = [(e["event"], e["log_level"], e.get("filters")) for e in logs if e["event"].startswith("filters.chain")]
    assert chain == [("filters.chain", "info", ["a"]), ("filters.chain_empty", "warning", None)]
