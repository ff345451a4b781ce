"""FilterStage: every filter must pass; a failing, hanging or disabled filter rejects (fail closed)."""

from __future__ import annotations

from pathlib import Path

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.events import Event, PluginDisabled, TokenAccepted, TokenRejected
from quantbot.filtering import FilterStage
from quantbot.testing import make_plugin, token_launch
from quantbot_filters.blocklist import BlocklistFilter


async def run_stage(
    filters: list[object], launches: int, *, max_failures: int = 5, filter_timeout: float = 1.0
) -> list[Event]:
    out: list[Event] = []

    async def record(e: Event) -> None:
        out.append(e)

    async with EventBus(clock=SimClock(), max_failures=max_failures) as bus:
        bus.subscribe(["token.accepted", "token.rejected", "plugin.disabled"], record, name="rec")
        stage = FilterStage(bus=bus, filters=filters, timeout=filter_timeout)  # type: ignore[arg-type]
        await stage.start()
        for i in range(launches):
            await bus.publish(token_launch(mint=f"M{i}", name="Fine"))
        await bus.drain(5)
        await stage.stop()
    return out


async def test_token_passing_every_filter_is_accepted_with_all_verdicts() -> None:
    a = make_plugin(BlocklistFilter, id="a", name_patterns=["rug"])
    b = make_plugin(BlocklistFilter, id="b", creators=["X"])
    (event,) = await run_stage([a, b], 1)
    assert isinstance(event, TokenAccepted)
    assert [(v.filter, v.passed) for v in event.verdicts] == [("a", True), ("b", True)]


async def test_one_failing_verdict_rejects() -> None:
    a = make_plugin(BlocklistFilter, id="a", name_patterns=["fine"])
    b = make_plugin(BlocklistFilter, id="b")
    (event,) = await run_stage([a, b], 1)
    assert isinstance(event, TokenRejected)
    assert [(v.filter, v.passed, v.reason) for v in event.verdicts] == [
        ("a", False, "name matches /fine/"),
        ("b", True, ""),
    ]


async def test_a_raising_filter_rejects_and_is_disabled_after_repeated_failures(plugin_site: Path) -> None:
    from qb_testplugins import ExplodingFilter  # type: ignore[import-not-found]

    boom = ExplodingFilter(id="boom", config=ExplodingFilter.Config())
    ok = make_plugin(BlocklistFilter, id="ok")
    events = await run_stage([boom, ok], 4, max_failures=2)
    verdicts = [e for e in events if isinstance(e, TokenRejected)]
    assert len(verdicts) == 4, "no token is accepted while a filter is broken"
    reasons = [e.verdicts[0].reason for e in verdicts]
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
    (event,) = await run_stage([hang], 1, filter_timeout=0.05)
    assert isinstance(event, TokenRejected)
    assert event.verdicts[0].reason == "filter error: TimeoutError"
