"""watcher.lag and report.daily: published on their edges / schedule, with the day's figures, to the notifiers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.events import DailyReport, Event, OrderFilled, OrderRejected, WatcherLag, decode, encode
from quantbot.ops.reports import DailyReporter, LagWatch
from quantbot.testing import order_intent, price_update
from tests.conftest import write
from tests.orderpath import order_path
from tests.test_notifiers import HMAC_KEY, TOKEN, Peer, eventually, receiver, telegram  # noqa: F401  (fixtures)
from tests.test_ops_http import Recorder, Watcher, running

T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


async def test_a_lag_crossing_its_bound_publishes_one_event_and_one_recovered_event() -> None:
    watcher = Watcher()
    async with EventBus(clock=SimClock(T0)) as bus:
        rec = Recorder()
        bus.subscribe("watcher.lag", rec, name="test")
        lag = LagWatch(bus=bus, components=lambda: [watcher], max_lag_s=lambda: {"solana.watcher": 30.0})
        await lag.check()  # 1.5 s: under the bound, nothing to say
        for seconds in (45.0, 90.0, None, 120.0):  # over, still over, unknown, over: one crossing
            watcher.lag_s = seconds
            await lag.check()
        for seconds in (2.0, 3.0):  # back under, still under: one recovery
            watcher.lag_s = seconds
            await lag.check()
        await bus.drain(5)
    assert [(e.component, e.lag_s, e.bound_s, e.recovered) for e in rec.events if isinstance(e, WatcherLag)] == [
        ("solana.watcher", 45.0, 30.0, False),
        ("solana.watcher", 2.0, 30.0, True),
    ]


async def test_a_component_without_a_bound_is_never_reported() -> None:
    watcher = Watcher()
    watcher.lag_s = 1e6
    async with EventBus(clock=SimClock(T0)) as bus:
        rec = Recorder()
        bus.subscribe("watcher.lag", rec, name="test")
        await LagWatch(bus=bus, components=lambda: [watcher], max_lag_s=lambda: {"aptos.watcher": 1.0}).check()
        await bus.drain(5)
    assert rec.events == []


async def test_the_daily_report_has_the_days_fill_rejection_pnl_and_equity(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with order_path(tmp_path, clock=clock) as path:
        reporter = DailyReporter(bus=path.bus, store=path.store, portfolio=path.portfolio, clock=clock)
        await reporter.start()
        await path.portfolio.sync_balances()
        # 1_000_000 lamports at 1000 lamports per token unit, paper defaults: a buy of about 1000 units.
        await path.bus.publish(
            order_intent(intent_id="a", amount=1_000_000, notional_usd=Decimal(1), price_native=Decimal(1000))
        )
        await path.settle()
        await path.bus.publish(order_intent(intent_id="b", token="Other", notional_usd=Decimal(10_000)))
        await path.settle()
        await path.bus.publish(price_update(price_native=Decimal(1500), observed_at=T0))
        await path.settle()
        assert [type(e) for e in path.events if isinstance(e, (OrderFilled, OrderRejected))] == [
            OrderFilled,
            OrderRejected,
        ]
        clock.advance(9 * 3600 + 5 * 60)  # 00:05 UTC the next day
        rec = Recorder()
        path.bus.subscribe("report.daily", rec, name="test")
        await reporter.run()
        (report,) = await rec.wait_for(DailyReport)
        await reporter.stop()
        pos = path.portfolio.position("solana", order_intent().token)
        expected_unrealised = path.portfolio.unrealised_pnl("solana", pos.token)
        equity = path.portfolio.equity_native("solana")
    assert isinstance(report, DailyReport) and report.day == "2026-03-01"
    days = {c.chain: c for c in report.chains}
    day = days["solana"]
    assert (day.trades, day.rejections, day.realised_pnl_native) == (1, 1, 0)
    assert (days["aptos"].trades, days["aptos"].rejections) == (0, 0)  # the paper wallet holds APT too
    assert day.unrealised_pnl_native == expected_unrealised and expected_unrealised > 0
    assert day.equity_native == equity and equity is not None
    assert decode(encode(report)) == report


async def test_the_next_days_report_counts_only_that_days_activity_and_realised_pnl(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with order_path(tmp_path, clock=clock) as path:
        reporter = DailyReporter(bus=path.bus, store=path.store, portfolio=path.portfolio, clock=clock)
        await reporter.start()
        await path.portfolio.sync_balances()
        await path.bus.publish(
            order_intent(intent_id="a", amount=1_000_000, notional_usd=Decimal(1), price_native=Decimal(1000))
        )
        await path.settle()
        clock.advance(9 * 3600 + 5 * 60)
        first = await reporter.report()
        held = path.portfolio.position("solana", order_intent().token).quantity
        await path.bus.publish(
            order_intent(intent_id="s", side="sell", amount=held, price_native=Decimal(2000), notional_usd=Decimal(1))
        )
        await path.settle()
        realised = path.portfolio.position("solana", order_intent().token).realised_pnl_native
        clock.advance(86_400)
        second = await reporter.report()
        await reporter.stop()
    assert first.day == "2026-03-01" and {c.chain: c for c in first.chains}["solana"].trades == 1
    assert second.day == "2026-03-02"
    day = {c.chain: c for c in second.chains}["solana"]
    assert (day.trades, day.rejections, day.realised_pnl_native) == (1, 0, realised) and realised > 0


def notifier_tables(tg_url: str, hook_url: str) -> str:
    """Both message notifiers with their default topics; both jobs on a schedule the test never waits for."""
    return (
        f'[[notifiers]]\nuse = "telegram"\nbot_token = {{ env = "TG_TOKEN" }}\nchat_id = "-100123"\n'
        f'base_url = "{tg_url}"\n'
        f'[[notifiers]]\nuse = "webhook"\nurl = "{hook_url}"\nhmac_key = {{ file = "hmac.key" }}\n'
        '[jobs.schedules]\nwatcher_lag = "1d"\ndaily_report = "1d"\n'
    )


async def test_telegram_and_webhook_receive_watcher_lag_and_the_daily_report_on_their_default_topics(
    tmp_path: Path,
    telegram: tuple[Peer, str],  # noqa: F811  (the fixture imported above)
    receiver: tuple[Peer, str],  # noqa: F811
) -> None:
    (tg, tg_url), (hook, hook_url) = telegram, receiver
    write(tmp_path / "hmac.key", HMAC_KEY)
    watcher = Watcher()
    async with running(
        tmp_path,
        http="max_lag_s = { 'solana.watcher' = 30 }",
        environ={"TG_TOKEN": TOKEN},
        watcher=watcher,
        extra=notifier_tables(tg_url, hook_url),
    ) as (daemon, _):
        assert daemon.jobs is not None
        watcher.lag_s = 95.0
        assert await daemon.jobs.run_now("watcher_lag")
        watcher.lag_s = 1.0
        assert await daemon.jobs.run_now("watcher_lag")
        assert await daemon.jobs.run_now("daily_report")
        await eventually(lambda: len(tg.requests) == 3 and len(hook.requests) == 3)
    texts = [json.loads(body)["text"] for _, body in tg.requests]
    assert texts[0].startswith("watcher.lag: component=solana.watcher, lag_s=95.0, bound_s=30.0, recovered=False")
    assert texts[1].startswith("watcher.lag: component=solana.watcher, lag_s=1.0, bound_s=30.0, recovered=True")
    assert texts[2].startswith("report.daily: day=")
    events: list[dict[str, Any]] = [json.loads(body)["event"] for _, body in hook.requests]
    assert [e["type"] for e in events] == ["WatcherLag", "WatcherLag", "DailyReport"]
    report = decode(json.dumps(events[2]))
    assert isinstance(report, DailyReport) and isinstance(report, Event)
    # The paper executor's balances make each chain's equity.
    assert [c.chain for c in report.chains] == ["solana", "aptos"]
    assert all(c.equity_native for c in report.chains)
