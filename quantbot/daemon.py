"""Daemon: the one place that knows every room. Builds, starts, reloads and stops the components.

Start order: clock -> bus -> store -> portfolio -> executors -> risk engine -> order router
(reconciles) -> exit manager -> filter stage -> strategies -> notifiers.
Stop: drain the bus, then stop components in reverse order, all within `daemon.shutdown_timeout`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
import structlog

from quantbot import __version__
from quantbot.api import Executor, Filter, Plugin, PluginConfig, PluginEnv
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock, WallClock
from quantbot.config import Config, ConfigError, LoadedConfig, PluginSpec, changed_sections, load_config
from quantbot.events import ConfigReloaded, Tick
from quantbot.exits import ExitManager
from quantbot.filtering import FilterStage
from quantbot.hosting import PluginHost
from quantbot.logs import setup_logging
from quantbot.ops.cluster import ClusterTransport, role_runs
from quantbot.ops.mqtt import MqttBridge
from quantbot.orders import OrderRouter, Sealer
from quantbot.plugins import PluginCatalog
from quantbot.portfolio import Portfolio
from quantbot.risk import RiskEngine, TradingState, set_trading_state
from quantbot.sdnotify import Notifier as SdNotifier
from quantbot.secrets import Redactor
from quantbot.store import Store
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore

log = structlog.get_logger(component="daemon")

STOP_GRACE_S = 1.0


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# What SIGHUP may change without a restart. `strategies` only when the same instances remain.
LIVE = frozenset({"filters", "strategies", "risk", "exits", "daemon.log_level"})


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_plugins(loaded: LoadedConfig, catalog: PluginCatalog, section: str, clock: Clock) -> list[Plugin]:
    """One instance per enabled `[[section]]` table, built from its validated parameters."""
    specs: tuple[PluginSpec, ...] = getattr(loaded.config, section)
    data_dir = Path(loaded.config.daemon.data_dir)
    out = []
    for spec in specs:
        if not spec.enabled:
            continue
        cls = catalog.get(section, spec.use).load()
        plugin = cls(id=spec.key, config=loaded.plugin_params[(section, spec.key)])
        plugin.attach(PluginEnv(clock=clock, data_dir=data_dir / section / spec.key))
        out.append(plugin)
    return out


def open_store(config: Config) -> Store:
    """The configured store (not yet opened)."""
    sc = config.store
    if sc.backend == "postgres":
        password = sc.postgres_password.reveal() if sc.postgres_password else None
        return PostgresStore(sc.postgres_dsn, password=password)
    path = Path(sc.sqlite_path)
    return SqliteStore(path if path.is_absolute() else Path(config.daemon.data_dir) / path)


class Daemon:
    """The kernel. `await Daemon(...).run()` returns the process exit status."""

    def __init__(
        self,
        *,
        loaded: LoadedConfig,
        config_paths: Sequence[str],
        catalog: PluginCatalog,
        redactor: Redactor,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.loaded = loaded
        self.config_paths = list(config_paths)
        self.catalog = catalog
        self.redactor = redactor
        self.clock = clock or WallClock()
        self.environ = os.environ if environ is None else environ
        self.sd = SdNotifier(self.environ)
        self.components: list[Component] = []
        self.started = asyncio.Event()
        self._commands: asyncio.Queue[str] = asyncio.Queue()
        self.bus: EventBus | None = None
        self.risk: RiskEngine | None = None
        self.filters: FilterStage | None = None
        self.strategies: PluginHost | None = None
        self.notifiers: PluginHost | None = None
        self.store: Store | None = None
        self.router: OrderRouter | None = None
        self.portfolio: Portfolio | None = None
        self.exits: ExitManager | None = None
        self.cluster: ClusterTransport | None = None
        self.mqtt: MqttBridge | None = None

    @property
    def config(self) -> Config:
        return self.loaded.config

    # --- control ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._commands.put_nowait("stop")

    def request_reload(self) -> None:
        self._commands.put_nowait("reload")

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.config
        self.sd.status("starting")
        log.info("daemon.starting", version=__version__, mode=cfg.mode, instance=cfg.instance, pid=os.getpid())
        bus = EventBus(
            clock=self.clock,
            origin=cfg.instance,
            queue_size=cfg.bus.queue_size,
            handler_timeout=cfg.bus.handler_timeout,
            max_failures=cfg.bus.max_consecutive_failures,
        )
        self.bus = bus
        self.store = open_store(cfg)
        executors = {
            p.id: p
            for p in build_plugins(self.loaded, self.catalog, "executors", self.clock)
            if isinstance(p, Executor)
        }
        executor_host = PluginHost(
            bus=bus, section="executors", plugins=list(executors.values()), overflow=Overflow.BLOCK
        )
        sealer = Sealer()
        self.portfolio = Portfolio(store=self.store, clock=self.clock)
        self.router = OrderRouter(
            bus=bus,
            store=self.store,
            portfolio=self.portfolio,
            executors=executors,
            sealer=sealer,
            clock=self.clock,
            mode=cfg.mode,
            execute_timeout=cfg.orders.execute_timeout,
        )
        self.risk = RiskEngine(
            bus=bus,
            limits=cfg.risk,
            routes=cfg.orders,
            router=self.router,
            sealer=sealer,
            clock=self.clock,
            store=self.store,
            portfolio=self.portfolio,
        )
        self.exits = ExitManager(bus=bus, store=self.store, portfolio=self.portfolio, rules=cfg.exits, clock=self.clock)
        self.filters = FilterStage(
            bus=bus,
            filters=[
                p for p in build_plugins(self.loaded, self.catalog, "filters", self.clock) if isinstance(p, Filter)
            ],
            timeout=cfg.bus.handler_timeout,
        )
        self.strategies = PluginHost(
            bus=bus,
            section="strategies",
            plugins=build_plugins(self.loaded, self.catalog, "strategies", self.clock),
            overflow=Overflow.BLOCK,
        )
        self.notifiers = PluginHost(
            bus=bus,
            section="notifiers",
            plugins=build_plugins(self.loaded, self.catalog, "notifiers", self.clock),
            overflow=Overflow.DROP_OLDEST,
        )
        # The risk engine subscribes to order results before the router reconciles, so budgets
        # reserved by orders that turn out to have failed are given back.
        self.components = [
            self.store,
            self.portfolio,
            executor_host,
            self.risk,
            self.router,
            self.exits,
            self.filters,
            self.strategies,
            self.notifiers,
        ]
        self._wire_ops(
            bus,
            trading=[self.portfolio, executor_host, self.risk, self.router, self.exits, self.filters, self.strategies],
        )

        loop = asyncio.get_running_loop()
        signals = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
            signal.SIGHUP: self.request_reload,
        }
        for sig, handler in signals.items():
            loop.add_signal_handler(sig, handler)
        watchdog = loop.create_task(self.sd.watchdog_loop(), name="quantbot[daemon].watchdog")
        ticker: asyncio.Task[None] | None = None
        try:
            async with bus:
                started: list[Component] = []
                failed = False
                try:
                    for c in self.components:
                        await c.start()
                        started.append(c)
                        log.info("component.started", name=c.name)
                    self._ready()
                    ticker = loop.create_task(self._tick(bus), name="quantbot[daemon].tick")
                    await self._serve()
                except Exception as exc:
                    failed = True
                    log.critical("daemon.failed", exc_info=exc)
                if ticker is not None:
                    ticker.cancel()
                status = await self._shutdown(bus, started)
                return 1 if failed else status
        finally:
            watchdog.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            self.sd.close()

    def _wire_ops(self, bus: EventBus, *, trading: Sequence[Component]) -> None:
        """The cluster role decides which components run here; then the transport and the MQTT bridge."""
        cfg = self.config
        if not role_runs(cfg.cluster.role, "trading"):
            self.components = [c for c in self.components if all(c is not t for t in trading)]
        if cfg.cluster.role != "all":
            self.cluster = ClusterTransport(
                bus=bus, cluster=cfg.cluster, mqtt=cfg.mqtt, instance=cfg.instance, clock=self.clock
            )
            self.components.append(self.cluster)
        if cfg.mqtt.enabled:
            self.mqtt = MqttBridge(
                bus=bus, config=cfg.mqtt, instance=cfg.instance, control=DaemonControl(self), clock=self.clock
            )
            self.components.append(self.mqtt)

    async def _tick(self, bus: EventBus) -> None:
        for seq in itertools.count(1):
            await self.clock.sleep(self.config.daemon.tick_interval)
            await bus.publish(Tick(seq=seq))

    def _ready(self) -> None:
        status = self._status_line()
        self.started.set()
        self.sd.ready(status)
        log.info("daemon.ready", status=status)

    def _status_line(self) -> str:
        assert self.filters and self.strategies and self.notifiers  # noqa: S101
        return (
            f"running mode={self.config.mode} filters={len(self.filters.filters)} "
            f"strategies={len(self.strategies.plugins)} notifiers={len(self.notifiers.plugins)}"
        )

    async def _serve(self) -> None:
        while True:
            command = await self._commands.get()
            if command == "stop":
                return
            if command == "reload":
                await self.reload()

    async def _shutdown(self, bus: EventBus, started: list[Component]) -> int:
        timeout = self.config.daemon.shutdown_timeout
        self.sd.stopping("stopping")
        log.info("daemon.stopping", timeout_s=timeout)
        deadline = loop_time() + timeout
        clean = await bus.drain(timeout)
        if not clean:
            log.error("daemon.shutdown_timeout", timeout_s=timeout, stage="drain", pending=bus.queue_depths())
        # Each component gets what is left of the budget, but at least a short grace, so one that
        # hangs cannot keep the next (ultimately the store) from closing.
        for c in reversed(started):
            budget = max(deadline - loop_time(), STOP_GRACE_S)
            try:
                async with asyncio.timeout(budget):
                    await c.stop()
                log.info("component.stopped", name=c.name)
            except TimeoutError:
                clean = False
                log.error("daemon.shutdown_timeout", timeout_s=timeout, stage=c.name)
            except Exception as exc:
                clean = False
                log.error("component.stop_failed", name=c.name, exc_info=exc)
        await bus.aclose()
        log.info("daemon.stopped", clean=clean, bus=bus.stats()["published"])
        return 0 if clean else 1

    # --- reload ----------------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read the config; apply live sections; refuse a bad config and keep the old one."""
        log.info("config.reloading", paths=self.config_paths)
        try:
            new = load_config(self.config_paths, environ=self.environ, plugins=self.catalog)
        except ConfigError as exc:
            log.error("config.reload_refused", problems=exc.problems, kept="previous config")
            return
        self.redactor.update(new.secrets)
        old = self.loaded
        changed = changed_sections(old.config, new.config)
        if "strategies" in changed and _instances(old.config.strategies) != _instances(new.config.strategies):
            changed.discard("strategies")
            changed.add("strategies (instances added, removed or replaced)")
        live = sorted(changed & LIVE)
        restart = sorted(changed - LIVE)
        if not role_runs(self.config.cluster.role, "trading"):  # those components do not run here
            live = [s for s in live if not s.startswith(("filters", "strategies", "risk", "exits"))]
        try:
            await self._apply(new, live)
        except Exception as exc:
            log.error("config.reload_failed", sections=live, exc_info=exc, kept="previous config")
            return
        self.loaded = _in_force(old, new, restart)
        if restart:
            log.warning("config.restart_required", sections=restart)
        log.info("config.reloaded", applied=live, restart_required=restart, effective=self.describe())
        assert self.bus is not None  # noqa: S101
        await self.bus.publish(ConfigReloaded(applied=tuple(live), restart_required=tuple(restart)))

    async def _apply(self, new: LoadedConfig, live: list[str]) -> None:
        assert self.risk and self.filters and self.strategies  # noqa: S101
        if "risk" in live:
            self.risk.set_limits(new.config.risk)
        if "exits" in live and self.exits is not None:
            self.exits.set_rules(new.config.exits)
        if "filters" in live:
            await self.filters.replace(self._next_filters(new))
        if "strategies" in live:
            self.strategies.reconfigure(_params(new, "strategies"))
        if "daemon.log_level" in live:
            d = new.config.daemon
            setup_logging(level=d.log_level, fmt=d.log_format, redactor=self.redactor)

    def _next_filters(self, new: LoadedConfig) -> list[Filter]:
        """Keep an instance whose id and plugin are unchanged (new params); build the rest."""
        assert self.filters is not None  # noqa: S101
        current = {f.id: f for f in self.filters.filters}
        uses = {s.key: s.use for s in self.loaded.config.filters}
        out: list[Filter] = []
        for spec in new.config.filters:
            if not spec.enabled:
                continue
            params = new.plugin_params[("filters", spec.key)]
            f = current.get(spec.key)
            if f is not None and uses.get(spec.key) == spec.use:
                if f.config != params:
                    f.reconfigure(params)
                out.append(f)
            else:
                cls = self.catalog.get("filters", spec.use).load()
                built = cls(id=spec.key, config=params)
                built.attach(
                    PluginEnv(clock=self.clock, data_dir=Path(new.config.daemon.data_dir) / "filters" / spec.key)
                )
                assert isinstance(built, Filter)  # noqa: S101  (the catalog checked the base class)
                out.append(built)
        return out

    def describe(self) -> dict[str, Any]:
        """The values the running components actually use."""
        assert self.risk and self.filters and self.strategies  # noqa: S101
        return {
            "mode": self.config.mode,
            "risk": self.risk.describe(),
            "filters": self.filters.describe(),
            "strategies": self.strategies.describe(),
            "log_level": self.config.daemon.log_level,
        }


class DaemonControl:
    """The MQTT bridge's `Control` until the ops Controller lands: halt/resume via the store, reload as SIGHUP."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def halt(self, reason: str) -> object:
        return await self._set(TradingState.HALTED, reason)

    async def resume(self) -> object:
        return await self._set(TradingState.ACTIVE, "mqtt resume")

    async def reload(self) -> object:
        self.daemon.request_reload()
        return {"reload": "requested"}

    async def _set(self, state: TradingState, reason: str) -> object:
        store = self.daemon.store
        if store is None:
            raise RuntimeError("the daemon has no store yet")
        await set_trading_state(store, state, reason=reason, now=self.daemon.clock.now())
        log.warning("trading.state_set", state=state.value, reason=reason, via="mqtt")
        return {"trading": state.value}


def _instances(specs: tuple[PluginSpec, ...]) -> list[tuple[str, str, bool]]:
    return [(s.key, s.use, s.enabled) for s in specs]


def _params(loaded: LoadedConfig, section: str) -> dict[str, PluginConfig]:
    return {key: p for (sec, key), p in loaded.plugin_params.items() if sec == section}


def _in_force(old: LoadedConfig, new: LoadedConfig, restart: list[str]) -> LoadedConfig:
    """The new config, except the sections that need a restart keep their running values."""
    cfg = new.config
    keep = {s for s in restart if "." not in s and " " not in s}
    if any(s.startswith("strategies ") for s in restart):
        keep.add("strategies")
    daemon_keys = [s.split(".", 1)[1] for s in restart if s.startswith("daemon.")]
    if daemon_keys:
        cfg = msgspec.structs.replace(
            cfg, daemon=msgspec.structs.replace(cfg.daemon, **{k: getattr(old.config.daemon, k) for k in daemon_keys})
        )
    cfg = msgspec.structs.replace(cfg, **{s: getattr(old.config, s) for s in keep})
    params = dict(new.plugin_params)
    for (section, key), p in old.plugin_params.items():
        if section in keep:
            params[(section, key)] = p
    for section, key in list(params):
        if section in keep and (section, key) not in old.plugin_params:
            del params[(section, key)]
    return LoadedConfig(config=cfg, sources=new.sources, plugin_params=params, secrets=new.secrets)
