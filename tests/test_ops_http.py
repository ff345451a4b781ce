"""The operations endpoint against a real running daemon: health, readiness, metrics, status, control."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from quantbot.clock import WallClock
from quantbot.config import load_config
from quantbot.daemon import Daemon
from quantbot.events import ConfigReloaded, Event, OrderFilled, OrderRejected, PriceUpdate
from quantbot.plugins import PluginCatalog
from quantbot.risk import TradingState, read_trading_state
from quantbot.secrets import Redactor
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.conftest import DaemonProcess, cli_env, write

TOKEN = "s3cret-control-token-value"
RPC_KEY = "rpc-api-key-0123456789"

BASE = """
instance = "ops-test"
[daemon]
data_dir = "{data}"
[http]
{http}
[[filters]]
use = "blocklist"
[[notifiers]]
use = "log"
topics = ["config.reloaded"]
[[executors]]
use = "paper"
slippage_bps = 0
fee_bps = 0
network_fee = 0
"""


class Watcher:
    """Stands in for a chain watcher from another room: a component with the documented `stats()` shape."""

    name = "solana.watcher"

    def __init__(self) -> None:
        self.lag_s: float | None = 1.5

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {
            "lag_s": self.lag_s,
            "reconnects": 3,
            "rpc_errors": 7,
            "endpoint": f"https://rpc.example/?api-key={RPC_KEY}",
        }


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    async def wait_for(self, cls: type[Event], count: int = 1) -> list[Event]:
        async with asyncio.timeout(10), self.arrived:
            while len(found := [e for e in self.events if isinstance(e, cls)]) < count:
                await self.arrived.wait()
            return found


@asynccontextmanager
async def running(
    tmp: Path,
    *,
    http: str = "",
    environ: Mapping[str, str] | None = None,
    watcher: Watcher | None = None,
    extra: str = "",
) -> AsyncIterator[tuple[Daemon, str]]:
    """A real daemon in this process, its HTTP endpoint on an ephemeral port; yields it and the base URL."""
    http = http if "port =" in http else f"port = 0\n{http}"
    cfg = write(tmp / "q.toml", BASE.format(data=tmp / "data", http=http) + extra)
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ=dict(environ or {}), plugins=catalog)
    daemon = Daemon(
        loaded=loaded,
        config_paths=[str(cfg)],
        catalog=catalog,
        redactor=Redactor(loaded.secrets),
        clock=WallClock(),
        environ=dict(environ or {}),
    )
    run = asyncio.create_task(daemon.run())
    async with asyncio.timeout(10):
        await daemon.started.wait()
    if watcher is not None:
        daemon.components.append(watcher)
        daemon.started_components.add(watcher.name)
    try:
        assert daemon.http is not None and daemon.http.port
        yield daemon, f"http://127.0.0.1:{daemon.http.port}"
    finally:
        daemon.request_stop()
        assert await run == 0


async def get(url: str, **kw: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        return r.status, await r.text()


async def post(url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, **kw) as r:
        return r.status, await r.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page by (name, sorted labels), parsed by prometheus_client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_healthz_answers_while_the_loop_runs(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, url):
        status, body = await get(f"{url}/healthz")
    assert status == 200 and '"alive"' in body


async def test_readyz_reports_a_watcher_lagging_past_its_bound_and_recovers(tmp_path: Path) -> None:
    watcher = Watcher()
    async with running(tmp_path, http="max_lag_s = { 'solana.watcher' = 30 }", watcher=watcher) as (_, url):
        assert (await get(f"{url}/readyz"))[0] == 200
        watcher.lag_s = 90.0
        status, body = await get(f"{url}/readyz")
        assert status == 503 and "solana.watcher: lag 90.0s > 30s" in body
        watcher.lag_s = None
        status, body = await get(f"{url}/readyz")
        assert status == 503 and "solana.watcher: no data yet" in body
        watcher.lag_s = 2.0
        assert (await get(f"{url}/readyz"))[0] == 200


async def test_metrics_parse_and_count_bus_orders_rejections_watchers_and_pnl(tmp_path: Path) -> None:
    async with running(tmp_path, watcher=Watcher()) as (daemon, url):
        assert daemon.bus is not None
        rec = Recorder()
        daemon.bus.subscribe(["order.filled", "order.rejected"], rec, name="test")
        # 1_000_000 lamports at 1000 lamports per token unit, no slippage or fee: 1000 token units.
        await daemon.bus.publish(
            order_intent(intent_id="a", amount=1_000_000, notional_usd=Decimal(1), price_native=Decimal(1000))
        )
        await rec.wait_for(OrderFilled)
        await daemon.bus.publish(order_intent(intent_id="b", token="Other", notional_usd=Decimal(10_000)))
        await rec.wait_for(OrderRejected)
        await daemon.bus.publish(
            PriceUpdate(
                chain="solana",
                token=order_intent().token,
                price_native=Decimal(1500),
                source="test",
                observed_at=WallClock().now(),
            )
        )
        await daemon.bus.drain(5)
        status, text = await get(f"{url}/metrics")
    assert status == 200
    got = samples(text)
    assert got[("quantbot_bus_published_total", (("topic", "order.filled"),))] == 1
    assert got[("quantbot_bus_delivered_total", (("subscriber", "risk"), ("topic", "order.intent")))] == 2
    assert ("quantbot_bus_queue_depth", (("subscriber", "risk"),)) in got
    assert got[("quantbot_bus_handler_seconds_count", (("subscriber", "risk"),))] == 2
    assert got[("quantbot_orders", (("status", "filled"),))] == 1
    assert got[("quantbot_orders", (("status", "pending"),))] == 0
    assert got[("quantbot_risk_rejections_total", (("reason", "max_order_usd"),))] == 1
    assert got[("quantbot_watcher_lag_seconds", (("component", "solana.watcher"),))] == 1.5
    assert got[("quantbot_watcher_reconnects_total", (("component", "solana.watcher"),))] == 3
    assert got[("quantbot_watcher_rpc_errors_total", (("component", "solana.watcher"),))] == 7
    # Marked at 1500 (under the take-profit): 1_500_000 lamports for 1_000_000 spent -> 0.0005 SOL.
    assert got[("quantbot_pnl_unrealised", (("chain", "solana"),))] == pytest.approx(0.0005)
    assert got[("quantbot_positions_value", (("chain", "solana"),))] == pytest.approx(0.0015)
    assert got[("quantbot_pnl_realised", (("chain", "solana"),))] == 0
    assert got[("quantbot_pnl_total", (("chain", "solana"),))] == pytest.approx(0.0005)
    # The paper executor reports its balances (10 SOL to start): equity = 10 - 0.001 spent + 0.0015 marked.
    assert got[("quantbot_equity", (("chain", "solana"),))] == pytest.approx(10.0005)


async def test_each_daemon_has_its_own_registry(tmp_path: Path) -> None:
    async with (
        running(tmp_path / "a") as (a, url_a),
        running(tmp_path / "b") as (b, url_b),
    ):
        assert a.http is not None and b.http is not None
        assert a.http.metrics.registry is not b.http.metrics.registry
        assert a.bus is not None
        await a.bus.publish(order_intent(intent_id="x", notional_usd=Decimal(10_000)))
        await a.bus.drain(5)
        got_a = samples((await get(f"{url_a}/metrics"))[1])
        got_b = samples((await get(f"{url_b}/metrics"))[1])
    assert got_a[("quantbot_risk_rejections_total", (("reason", "max_order_usd"),))] == 1
    assert ("quantbot_risk_rejections_total", (("reason", "max_order_usd"),)) not in got_b


async def test_status_shows_state_positions_plugins_components_and_no_secret(tmp_path: Path) -> None:
    environ = {"QB_TOKEN": TOKEN, "QB_RPC": RPC_KEY}
    http = 'control_token = { env = "QB_TOKEN" }'
    async with running(tmp_path, http=http, environ=environ, watcher=Watcher()) as (daemon, url):
        daemon.redactor.update([RPC_KEY])  # as a watcher's endpoint secret would be registered
        assert daemon.bus is not None
        rec = Recorder()
        daemon.bus.subscribe("order.filled", rec, name="test")
        await daemon.bus.publish(
            order_intent(intent_id="a", amount=1_000_000, notional_usd=Decimal(1), price_native=Decimal(1000))
        )
        await rec.wait_for(OrderFilled)
        status, text = await get(f"{url}/status")
    assert status == 200
    assert TOKEN not in text and RPC_KEY not in text
    body = json.loads(text)
    assert (body["instance"], body["mode"], body["ready"]) == ("ops-test", "paper", True)
    assert body["trading"] == {"state": "active", "reason": ""}
    assert [(p["token"], p["quantity"], p["cost_native"]) for p in body["positions"]] == [
        (order_intent().token, 1000, 1_000_000)
    ]
    assert body["plugins"]["filters"] == [{"id": "blocklist", "use": "blocklist", "enabled": True, "state": "enabled"}]
    assert body["plugins"]["executors"][0]["id"] == "paper"
    names = [c["name"] for c in body["components"]]
    assert names[:6] == ["store", "lease", "store.writer", "http", "prices", "whales"] and all(
        c["started"] for c in body["components"]
    )
    assert body["watchers"]["solana.watcher"]["endpoint"] == "https://rpc.example/?api-key=***"
    assert body["bus"]["published"]["order.filled"] == 1
    assert body["uptime_s"] >= 0 and body["version"]


async def test_control_is_off_without_a_token(tmp_path: Path) -> None:
    async with running(tmp_path) as (daemon, url):
        status, body = await post(f"{url}/control/halt", headers={"Authorization": "Bearer anything"})
        assert status == 403 and "http.control_token" in body["error"]
        assert daemon.store is not None
        assert await read_trading_state(daemon.store) is TradingState.ACTIVE


async def test_control_refuses_a_wrong_or_missing_token(tmp_path: Path) -> None:
    http = 'control_token = { env = "QB_TOKEN" }'
    async with running(tmp_path, http=http, environ={"QB_TOKEN": TOKEN}) as (daemon, url):
        for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": f"Basic {TOKEN}"}):
            async with aiohttp.ClientSession() as s, s.post(f"{url}/control/halt", headers=headers) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert daemon.store is not None
        assert await read_trading_state(daemon.store) is TradingState.ACTIVE


async def test_control_with_the_token_halts_resumes_persists_and_reloads(tmp_path: Path) -> None:
    http = 'control_token = { env = "QB_TOKEN" }'
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with running(tmp_path, http=http, environ={"QB_TOKEN": TOKEN}) as (daemon, url):
        assert daemon.bus is not None and daemon.store is not None
        rec = Recorder()
        daemon.bus.subscribe(["order.rejected", "config.reloaded"], rec, name="test")
        status, body = await post(f"{url}/control/halt", headers=auth, json={"reason": "maintenance"})
        assert (status, body) == (200, {"before": "active", "trading": "halted", "reason": "maintenance"})
        await daemon.bus.publish(order_intent(intent_id="a", notional_usd=Decimal(1), price_native=Decimal(1)))
        (rejected,) = await rec.wait_for(OrderRejected)
        assert isinstance(rejected, OrderRejected) and rejected.reason.value == "halted"
        status, _ = await post(f"{url}/control/reload", headers=auth)
        assert status == 202
        await rec.wait_for(ConfigReloaded)
        status, body = await post(f"{url}/control/halt", headers=auth, data=b"{not json")
        assert status == 400
    async with SqliteStore(tmp_path / "data" / "quantbot.db") as store:
        assert await read_trading_state(store) is TradingState.HALTED, "the halt outlives the daemon"
    async with running(tmp_path, http=http, environ={"QB_TOKEN": TOKEN}) as (daemon, url):
        status, body = await post(f"{url}/control/resume", headers=auth)
        assert (status, body["before"], body["trading"]) == (200, "halted", "active")


async def test_a_taken_port_is_logged_and_the_daemon_runs_on(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    cfg = write(tmp_path / "q.toml", BASE.format(data=tmp_path / "data", http=f"port = {port}"))
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(loaded=loaded, config_paths=[str(cfg)], catalog=catalog, redactor=Redactor(), environ={})
    try:
        with capture_logs() as logs:
            run = asyncio.create_task(daemon.run())
            async with asyncio.timeout(10):
                await daemon.started.wait()
        assert daemon.http is not None and not daemon.http.serving
        (failed,) = [e for e in logs if e["event"] == "http.bind_failed"]
        assert failed["port"] == port and failed["log_level"] == "error"
        daemon.request_stop()
        assert await run == 0
    finally:
        blocker.close()
        await blocker.wait_closed()


@pytest.mark.subprocess
def test_readyz_is_503_while_starting_and_200_once_started(
    tmp_path: Path, daemons: list[DaemonProcess], plugin_site: Path
) -> None:
    gate = tmp_path / "gate"
    extra = f'[[notifiers]]\nuse = "gated_start"\ngate = "{gate}"\n'
    cfg = write(tmp_path / "q.toml", BASE.format(data=tmp_path / "data", http="port = 0") + extra)
    d = DaemonProcess("-c", str(cfg), env=cli_env(PYTHONPATH=str(plugin_site)))
    daemons.append(d)
    port = d.wait_for("http.listening")["port"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert refused.value.code == 503
    reasons = refused.value.read().decode()
    assert "daemon is starting" in reasons and "component notifiers not started" in reasons
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        assert r.status == 200, "alive while still starting"
    gate.touch()
    d.wait_for("daemon.ready")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
        assert r.status == 200
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


async def test_scheduled_backup_runs_in_the_daemon_and_shows_in_status_and_metrics(tmp_path: Path) -> None:
    async with running(tmp_path, extra='[jobs.schedules]\nbackup = "0.1s"\n') as (daemon, url):
        assert daemon.jobs is not None
        async with asyncio.timeout(10):
            while daemon.jobs.stats["backup"].last_success is None:  # noqa: ASYNC110  (nothing to await on)
                await asyncio.sleep(0.05)
        status = json.loads((await get(f"{url}/status"))[1])
        got = samples((await get(f"{url}/metrics"))[1])
    assert status["jobs"]["backup"]["runs"] >= 1 and status["jobs"]["backup"]["schedule"] == "0.1s"
    assert got[("quantbot_job_runs_total", (("job", "backup"),))] >= 1
    assert got[("quantbot_job_failures_total", (("job", "backup"),))] == 0
    assert list((tmp_path / "data" / "backups").glob("quantbot-*.db"))


async def test_with_http_and_jobs_disabled_the_daemon_runs_without_them(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml", BASE.format(data=tmp_path / "data", http="enabled = false") + "[jobs]\nenabled = false\n"
    )
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(loaded=loaded, config_paths=[str(cfg)], catalog=catalog, redactor=Redactor(), environ={})
    run = asyncio.create_task(daemon.run())
    async with asyncio.timeout(10):
        await daemon.started.wait()
    assert daemon.http is None and daemon.jobs is None
    assert not {"http", "jobs"} & {c.name for c in daemon.components}
    assert daemon.controller is not None, "the controller still serves other surfaces (MQTT)"
    daemon.request_stop()
    assert await run == 0
