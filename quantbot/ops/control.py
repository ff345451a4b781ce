"""Controller: the operator's levers (halt, resume, reload) and the daemon's status, for HTTP and MQTT.

halt/resume write the trading state into the store exactly as `quantbot halt` does, so the kill
switch survives a restart and the risk engine applies it to its very next intent. Everything
`status()` returns passes through the Redactor: no secret reaches a client.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from quantbot import __version__
from quantbot.bus import EventBus, PluginRef
from quantbot.clock import Clock
from quantbot.config import PLUGIN_SECTIONS, Config
from quantbot.portfolio import Portfolio
from quantbot.risk import REASON_KEY, TradingState, read_trading_state, set_trading_state
from quantbot.secrets import Redactor
from quantbot.store import Store

log = structlog.get_logger(component="control")


class Controls(Protocol):
    """What a remote control surface (HTTP, MQTT) may call."""

    async def halt(self, reason: str) -> TradingChange: ...

    async def resume(self, reason: str = ...) -> TradingChange: ...

    async def reload(self) -> None: ...


class DaemonView(Protocol):
    """What the controller reads from the daemon (the daemon satisfies it as it is)."""

    @property
    def config(self) -> Config: ...

    @property
    def components(self) -> Sequence[Any]: ...

    @property
    def started_components(self) -> set[str]: ...

    @property
    def started(self) -> asyncio.Event: ...

    def request_reload(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TradingChange:
    before: TradingState
    after: TradingState
    reason: str

    def line(self) -> str:
        return f"trading: {self.before.value} -> {self.after.value} ({self.reason})"


def component_stats(components: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """`stats()` of every component that has one (watchers report `lag_s`, `reconnects`, `rpc_errors`)."""
    out: dict[str, dict[str, Any]] = {}
    for c in components:
        stats = getattr(c, "stats", None)
        if not callable(stats):
            continue
        try:
            value = stats()
        except Exception as exc:  # noqa: BLE001  (a broken stats() must not break status or metrics)
            log.warning("control.stats_failed", name=c.name, error=f"{type(exc).__name__}: {exc}")
            continue
        if isinstance(value, Mapping):
            out[str(c.name)] = dict(value)
    return out


def bounded_lags(components: Sequence[Any], max_lag_s: Mapping[str, float]) -> dict[str, tuple[float | None, float]]:
    """Component name -> (its reported `lag_s`, None if unknown; its bound) for every component with a bound."""
    default = max_lag_s.get("*")
    out: dict[str, tuple[float | None, float]] = {}
    for name, stats in component_stats(components).items():
        bound = max_lag_s.get(name, default)
        if bound is None or "lag_s" not in stats:
            continue
        lag = stats["lag_s"]
        out[name] = (None if lag is None else float(lag), float(bound))
    return out


class Controller:
    """Built by the daemon once the store and portfolio exist."""

    name = "control"

    def __init__(
        self,
        *,
        daemon: DaemonView,
        store: Store,
        bus: EventBus,
        portfolio: Portfolio,
        clock: Clock,
        redactor: Redactor,
    ) -> None:
        self.daemon = daemon
        self.store = store
        self.bus = bus
        self.portfolio = portfolio
        self.clock = clock
        self.redactor = redactor
        self._born = clock.monotonic()
        self._born_at = clock.now()

    # --- levers ----------------------------------------------------------------------------------

    async def halt(self, reason: str) -> TradingChange:
        """The kill switch: new entries stop, exits still pass. Persisted."""
        return await self._set(TradingState.HALTED, reason or "operator")

    async def resume(self, reason: str = "operator") -> TradingChange:
        return await self._set(TradingState.ACTIVE, reason or "operator")

    async def reload(self) -> None:
        """Ask the daemon to re-read its config (as SIGHUP does); it applies it in its own loop."""
        log.info("control.reload_requested")
        self.daemon.request_reload()

    async def _set(self, state: TradingState, reason: str) -> TradingChange:
        before = await read_trading_state(self.store)
        await set_trading_state(self.store, state, reason=reason, now=self.clock.now())
        change = TradingChange(before=before, after=state, reason=reason)
        log.warning("control.trading_state", before=before.value, after=state.value, reason=reason)
        return change

    async def trading(self) -> dict[str, str]:
        state = await read_trading_state(self.store)
        return {"state": state.value, "reason": await self.store.get_state(REASON_KEY) or ""}

    # --- readiness and status --------------------------------------------------------------------

    def readiness(self, max_lag_s: Mapping[str, float]) -> list[str]:
        """Why the daemon is not ready (empty when it is): start-up unfinished or a watcher lagging."""
        reasons: list[str] = []
        if not self.daemon.started.is_set():
            reasons.append("daemon is starting")
        started = self.daemon.started_components
        reasons += [f"component {c.name} not started" for c in self.daemon.components if c.name not in started]
        for name, (lag, bound) in bounded_lags(self.daemon.components, max_lag_s).items():
            if lag is None:
                reasons.append(f"{name}: no data yet (lag unknown)")
            elif lag > bound:
                reasons.append(f"{name}: lag {lag:.1f}s > {bound:g}s")
        return reasons

    def plugins(self) -> dict[str, list[dict[str, Any]]]:
        """Every configured plugin instance per group: enabled, disabled in config, or after failures."""
        failed = self.bus.health.disabled
        out: dict[str, list[dict[str, Any]]] = {}
        for section in PLUGIN_SECTIONS:
            rows = []
            for spec in getattr(self.daemon.config, section):
                if not spec.enabled:
                    state = "disabled"
                elif PluginRef(section, spec.key) in failed:
                    state = "failed"
                else:
                    state = "enabled"
                rows.append({"id": spec.key, "use": spec.use, "enabled": state == "enabled", "state": state})
            out[section] = rows
        return out

    def positions(self) -> list[dict[str, Any]]:
        return [
            {
                "chain": p.chain,
                "token": p.token,
                "quantity": p.quantity,
                "cost_native": p.cost_native,
                "realised_pnl_native": p.realised_pnl_native,
                "opened_at": p.opened_at.isoformat() if p.opened_at else None,
            }
            for p in self.portfolio.positions.values()
            if p.open
        ]

    def jobs(self) -> dict[str, Any]:
        """Scheduled jobs' run counts and last results, from components that keep them (`job_stats()`)."""
        out: dict[str, Any] = {}
        for c in self.daemon.components:
            job_stats = getattr(c, "job_stats", None)
            if callable(job_stats):
                out.update(job_stats())
        return out

    async def status(self) -> dict[str, Any]:
        """The daemon at a glance, JSON-able, every config-derived value redacted."""
        cfg = self.daemon.config
        started = self.daemon.started_components
        ready = self.daemon.started.is_set()
        out: dict[str, Any] = {
            "instance": cfg.instance,
            "mode": cfg.mode,
            "version": __version__,
            "pid": os.getpid(),
            "started_at": self._born_at.isoformat(),
            "uptime_s": round(self.clock.monotonic() - self._born, 3),
            "ready": ready,
            "trading": await self.trading(),
            "positions": self.positions(),
            "plugins": self.plugins(),
            "components": [{"name": c.name, "started": c.name in started} for c in self.daemon.components],
            "watchers": component_stats(self.daemon.components),
            "jobs": self.jobs(),
            "bus": self.bus.stats(),
            "effective": self.daemon.describe() if ready else {},
        }
        scrubbed: dict[str, Any] = self.redactor.scrub_any(out)
        return scrubbed
