"""Daemon lifecycle on a real process: ordered start and stop, SIGTERM/SIGINT, SIGHUP reload."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.bus import PluginRef
from quantbot.events import (
    ConfigReloaded,
    Event,
    OrderApproved,
    OrderRejected,
    PluginDisabled,
    RejectReason,
    TokenAccepted,
    TokenRejected,
)
from quantbot.secrets import REDACTED, Redactor
from quantbot.testing import token_launch
from tests.conftest import DaemonProcess, cli_env, start_daemon, write

COMPONENTS = [
    "store",
    "lease",
    "store.writer",
    "http",
    "prices",
    "whales",
    "executors",
    "portfolio",
    "risk",
    "orders",
    "exits",
    "filters",
    "scanner",
    "scanner.rugwatch",
    "strategies",
    "notifiers",
    "reports",
    "jobs",
]
"""The daemon's components in start order."""

BASE = """
[daemon]
data_dir = "{data_dir}"
shutdown_timeout = {timeout}
[risk]
max_order_usd = {max_usd}
[[filters]]
use = "blocklist"
name_patterns = {patterns}
[[notifiers]]
use = "log"
topics = ["token.#", "order.#", "config.reloaded"]
"""


def config_text(
    tmp: Path, *, max_usd: int = 50, patterns: str = '["rug"]', timeout: float = 10, extra: str = ""
) -> str:
    """A daemon config whose state goes under `tmp`."""
    return BASE.format(max_usd=max_usd, patterns=patterns, timeout=timeout, data_dir=tmp / "data") + extra


@pytest.mark.subprocess
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_components_in_reverse_order_and_exits_0(
    tmp_path: Path, daemons: list[DaemonProcess], sig: signal.Signals
) -> None:
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    d = DaemonProcess("-c", str(cfg))
    daemons.append(d)
    d.wait_for("daemon.ready")
    d.signal(sig)
    assert d.wait() == 0
    started = [r["name"] for r in d.lines if r["event"] == "component.started"]
    stopped = [r["name"] for r in d.lines if r["event"] == "component.stopped"]
    assert started == COMPONENTS
    assert stopped == list(reversed(started))
    assert d.lines[-1]["event"] == "daemon.stopped" and d.lines[-1]["clean"] is True
    assert all("component" in r and "timestamp" in r and "level" in r for r in d.lines)


@pytest.mark.subprocess
def test_a_second_daemon_on_the_same_data_dir_refuses_to_start(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """Started by hand while the service runs, it would trade the same wallet from the same store."""
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    first = DaemonProcess("-c", str(cfg))
    daemons.append(first)
    first.wait_for("daemon.ready")
    second = DaemonProcess("-c", str(cfg))
    daemons.append(second)
    assert second.wait() == 75  # EX_TEMPFAIL: systemd may try again later
    (refused,) = [r for r in second.lines if r["event"] == "daemon.already_running"]
    assert f"pid {first.proc.pid}" in refused["detail"] and str(tmp_path / "data") in refused["detail"]
    assert not [r for r in second.lines if r["event"] == "component.started"], "it touched nothing"
    for made in (tmp_path / "data", tmp_path / "data" / "quantbot.db"):  # whatever the caller's umask
        assert made.stat().st_mode & 0o077 == 0, f"{made} is readable by others"
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    third = DaemonProcess("-c", str(cfg))  # the lock went with the first process
    daemons.append(third)
    third.wait_for("daemon.ready")
    third.signal(signal.SIGTERM)
    assert third.wait() == 0


@pytest.mark.subprocess
def test_sighup_applies_new_filter_parameter_and_risk_limit(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    cfg = write(tmp_path / "q.toml", config_text(tmp_path, max_usd=50, patterns='["rug"]'))
    d = DaemonProcess("-c", str(cfg))
    daemons.append(d)
    d.wait_for("daemon.ready")
    write(cfg, config_text(tmp_path, max_usd=7, patterns='["rug", "scam"]'))
    d.signal(signal.SIGHUP)
    reloaded = d.wait_for("config.reloaded")
    assert reloaded["applied"] == ["filters", "risk"]
    assert reloaded["restart_required"] == []
    # `effective` is read back from the running risk engine and filter instance.
    assert reloaded["effective"]["risk"]["max_order_usd"] == "7"
    assert reloaded["effective"]["filters"]["blocklist"]["name_patterns"] == ["rug", "scam"]
    changed = d.wait_for("risk.limits_changed")
    assert (changed["old"]["max_order_usd"], changed["new"]["max_order_usd"]) == ("50", "7")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


@pytest.mark.subprocess
def test_sighup_with_a_bad_config_keeps_the_old_one(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    good = config_text(tmp_path, max_usd=50)
    cfg = write(tmp_path / "q.toml", good)
    d = DaemonProcess("-c", str(cfg))
    daemons.append(d)
    d.wait_for("daemon.ready")
    write(cfg, config_text(tmp_path, max_usd=7).replace('use = "blocklist"', 'use = "blocklst"'))
    d.signal(signal.SIGHUP)
    refused = d.wait_for("config.reload_refused")
    assert refused["level"] == "error"
    assert any("unknown plugin 'blocklst'" in p for p in refused["problems"])
    # Back to the original file: nothing differs from what is in force, so the bad one never applied.
    write(cfg, good)
    d.signal(signal.SIGHUP)
    reloaded = d.wait_for("config.reloaded")
    assert reloaded["applied"] == []
    assert reloaded["effective"]["risk"]["max_order_usd"] == "50"
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


@pytest.mark.subprocess
def test_sighup_change_that_cannot_apply_live_is_logged_restart_required_and_log_level_applies(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    d = DaemonProcess("-c", str(cfg))
    daemons.append(d)
    d.wait_for("daemon.ready")
    changed = config_text(tmp_path, timeout=3, extra="[bus]\nqueue_size = 16\n").replace(
        "[daemon]\n", '[daemon]\nlog_level = "debug"\n'
    )
    write(cfg, changed)
    d.signal(signal.SIGHUP)
    warning = d.wait_for("config.restart_required")
    assert warning["sections"] == ["bus", "daemon.shutdown_timeout"]
    reloaded = d.wait_for("config.reloaded")
    assert reloaded["applied"] == ["daemon.log_level"], "the log level changes live beside them"
    assert reloaded["effective"]["log_level"] == "debug"
    # The running values stay in force, so asking again still says a restart is needed.
    d.signal(signal.SIGHUP)
    assert d.wait_for("config.restart_required")["sections"] == ["bus", "daemon.shutdown_timeout"]
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert d.wait_for("daemon.stopping")["timeout_s"] == 10.0


@pytest.mark.subprocess
def test_shutdown_is_bounded_when_a_plugin_hangs_in_stop(
    tmp_path: Path, daemons: list[DaemonProcess], plugin_site: Path
) -> None:
    cfg = write(tmp_path / "q.toml", config_text(tmp_path, timeout=0.5, extra='[[notifiers]]\nuse = "hang_on_stop"\n'))
    d = DaemonProcess("-c", str(cfg), env=cli_env(PYTHONPATH=str(plugin_site)))
    daemons.append(d)
    d.wait_for("daemon.ready")
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=20) == 1, "a forced stop is reported as a failure"
    timed_out = d.wait_for("daemon.shutdown_timeout")
    assert (timed_out["timeout_s"], timed_out["stage"]) == (0.5, "notifiers")
    stopped = [r["name"] for r in d.lines if r["event"] == "component.stopped"]
    assert stopped[-1] == "store", "the store still closes after a plugin hung"


@pytest.mark.subprocess
def test_run_warns_about_a_broken_plugin_it_does_not_use(
    tmp_path: Path, daemons: list[DaemonProcess], plugin_site: Path
) -> None:
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    d = DaemonProcess("-c", str(cfg), env=cli_env(PYTHONPATH=str(plugin_site)))
    daemons.append(d)
    warning = d.wait_for("plugin.unloadable", name="broken")
    assert warning["level"] == "warning"
    assert "qb-testplugins 1.2.3 failed to import" in warning["error"]
    d.wait_for("daemon.ready")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


# --- in process: the same signals, observed through the bus ----------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    async def next(self, cls: type[Event], after: int) -> Event:
        async with asyncio.timeout(10), self.arrived:
            while True:
                for e in self.events[after:]:
                    if isinstance(e, cls):
                        return e
                await self.arrived.wait()


async def test_sighup_changes_filter_and_risk_behaviour_in_the_running_daemon(
    tmp_path: Path, plugin_site: Path
) -> None:
    strategy = '[[strategies]]\nuse = "buy_accepted"\nnotional_usd = 10\n'
    cfg = write(tmp_path / "q.toml", config_text(tmp_path, max_usd=50, patterns='["rug"]', extra=strategy))
    daemon, run = await start_daemon(cfg)
    assert daemon.bus is not None
    rec = Recorder()
    daemon.bus.subscribe(["token.#", "order.#", "config.reloaded"], rec, name="test")

    n = len(rec.events)
    await daemon.bus.publish(token_launch(name="Moon Cat", mint="Moon1"))
    assert isinstance(await rec.next(TokenAccepted, n), TokenAccepted)
    approved = await rec.next(OrderApproved, n)
    assert isinstance(approved, OrderApproved)
    assert approved.intent.notional_usd == Decimal(10)
    assert approved.intent.strategy == "buy_accepted", "the host, not the strategy, names the strategy"

    write(cfg, config_text(tmp_path, max_usd=5, patterns='["rug", "moon"]', extra=strategy))
    n = len(rec.events)
    os.kill(os.getpid(), signal.SIGHUP)
    reloaded = await rec.next(ConfigReloaded, n)
    assert isinstance(reloaded, ConfigReloaded) and reloaded.applied == ("filters", "risk")

    n = len(rec.events)
    await daemon.bus.publish(token_launch(name="Moon Cat", mint="Moon2"))
    rejected = await rec.next(TokenRejected, n)
    assert isinstance(rejected, TokenRejected)
    assert rejected.verdicts[0].reason == "name matches /moon/"

    n = len(rec.events)
    await daemon.bus.publish(token_launch(name="Star Dog", mint="Star1"))
    refused = await rec.next(OrderRejected, n)
    assert isinstance(refused, OrderRejected)
    assert refused.reason is RejectReason.MAX_ORDER_USD
    assert refused.intent.token == "Star1"

    daemon.request_stop()
    assert await run == 0


async def test_the_running_daemon_scrubs_secrets_from_event_text_before_notifiers_see_it(tmp_path: Path) -> None:
    """A plugin disabled over an exception that quotes a URL with an API key: the plugin.disabled event every
    notifier and the MQTT bridge take from the bus names the error without the key."""
    key = "api-key-0f-the-operator"
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    daemon, run = await start_daemon(cfg, redactor=Redactor([key]))
    assert daemon.bus is not None
    rec = Recorder()
    daemon.bus.subscribe("plugin.disabled", rec, name="test")
    error = f"ClientResponseError: 401, url='https://rpc.example/{key}'"
    await daemon.bus.disable_plugin(PluginRef("strategies", "feed"), failures=5, error=error)
    disabled = await rec.next(PluginDisabled, 0)
    assert isinstance(disabled, PluginDisabled)
    assert disabled.last_error == f"ClientResponseError: 401, url='https://rpc.example/{REDACTED}'"
    daemon.request_stop()
    assert await run == 0
