"""Daemon: the one place that knows every room. Builds, starts, reloads and stops the components.

Start order: clock -> bus -> store -> prices -> whales -> portfolio -> executors -> risk engine -> order router
(reconciles) -> exit manager -> filter stage -> strategies -> notifiers.
Stop: drain the bus, then stop components in reverse order, all within `daemon.shutdown_timeout`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from quantbot import __version__
from quantbot.api import Executor, Filter, Plugin, PluginConfig, PluginEnv, PriceView
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock, WallClock
from quantbot.config import Config, ConfigError, LoadedConfig, PluginSpec, changed_sections, load_config
from quantbot.datadir import EX_TEMPFAIL, AlreadyRunning, DataDirLock
from quantbot.events import ConfigReloaded, Tick
from quantbot.exits import ExitManager
from quantbot.filtering import FilterStage
from quantbot.hosting import PluginHost
from quantbot.lease import TradingLease, holder_name
from quantbot.logs import setup_logging
from quantbot.ops.cluster import ClusterTransport, role_runs
from quantbot.ops.control import Controller
from quantbot.ops.http import HttpServer
from quantbot.ops.jobs import Jobs
from quantbot.ops.metrics import Metrics
from quantbot.ops.mqtt import MqttBridge
from quantbot.ops.reports import DailyReporter, LagWatch
from quantbot.orders import OrderRouter, Sealer
from quantbot.plugins import PluginCatalog
from quantbot.portfolio import Portfolio
from quantbot.prices import AccountWatcher, PriceBook
from quantbot.recording import RawTap, Recorder
from quantbot.risk import RiskEngine
from quantbot.sdnotify import Notifier as SdNotifier
from quantbot.secrets import Redactor
from quantbot.sizing import Sizer
from quantbot.store import Store
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from quantbot.store.writer import WriteBehind
from quantbot.whales import WhaleTracker

if TYPE_CHECKING:
    from quantbot.chains.aptos.watcher import AptosWatcher
    from quantbot.chains.solana.rpc import SolanaRpcPool
    from quantbot.chains.solana.watcher import SolanaWatcher

log = structlog.get_logger(component="daemon")

STOP_GRACE_S = 1.0


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# What SIGHUP may change without a restart. `strategies` only when the same instances remain.
LIVE = frozenset({"filters", "strategies", "risk", "exits", "daemon.log_level", "sizing"})


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _forget(executors: dict[str, Executor], name: str) -> None:
    executors.pop(name, None)


def build_plugins(
    loaded: LoadedConfig, catalog: PluginCatalog, section: str, clock: Clock, prices: PriceView | None = None
) -> list[Plugin]:
    """One instance per enabled `[[section]]` table, built from its validated parameters."""
    specs: tuple[PluginSpec, ...] = getattr(loaded.config, section)
    data_dir = Path(loaded.config.daemon.data_dir)
    out = []
    for spec in specs:
        if not spec.enabled:
            continue
        cls = catalog.get(section, spec.use).load()
        plugin = cls(id=spec.key, config=loaded.plugin_params[(section, spec.key)])
        plugin.attach(PluginEnv(clock=clock, data_dir=data_dir / section / spec.key, prices=prices))
        out.append(plugin)
    return out


def build_solana(
    config: Config, *, bus: EventBus, store: Store, clock: Clock, recorder: Recorder | None = None
) -> tuple[SolanaRpcPool, SolanaWatcher]:
    """The Solana RPC pool and watcher (when `solana.enabled`), in start order; `recorder` gets the raw input."""
    from quantbot.chains.solana.parser import SolanaParser  # type: ignore[import-not-found, unused-ignore]
    from quantbot.chains.solana.rpc import SolanaRpcPool
    from quantbot.chains.solana.watcher import SolanaWatcher

    sc = config.solana
    pool = SolanaRpcPool(endpoints=sc.endpoints, clock=clock, commitment=sc.commitment)
    parser: Any = SolanaParser()
    if recorder is not None:
        parser = RawTap(parser, chain="solana", recorder=recorder)
    watcher = SolanaWatcher(bus=bus, rpc=pool, parser=parser, store=store, clock=clock, config=sc)
    return pool, watcher


def build_scanner(
    config: Config,
    *,
    bus: EventBus,
    filters: FilterStage,
    clock: Clock,
    store: Store,
    writer: WriteBehind,
    rpc: Component | None,
    prices: PriceView | None,
) -> list[Component]:
    """The MemeScanner, its rug watch and (when `scanner.pumpportal_url` is set) the PumpPortal feed."""
    from quantbot.creators import CreatorHistory
    from quantbot.rugwatch import RugWatch
    from quantbot.scanner import MemeScanner

    sc = config.scanner
    enricher = None
    if rpc is not None:  # the Solana client stack is imported only when Solana is enabled
        from quantbot.chains.solana.rpc import SolanaRpcPool
        from quantbot.enrich import SolanaEnricher

        assert isinstance(rpc, SolanaRpcPool)  # noqa: S101  (build_solana puts the pool first)
        enricher = SolanaEnricher(
            rpc=rpc,
            clock=clock,
            timeout=sc.lookup_timeout_s,
            static_ttl=sc.static_cache_ttl_s,
            state_ttl=sc.state_cache_ttl_s,
            prices=prices,
        )
    history = CreatorHistory(store=store, writer=writer, clock=clock, keep=sc.creator_history_keep)
    scanner = MemeScanner(
        bus=bus, filters=filters, config=sc, clock=clock, history=history, enricher=enricher, writer=writer
    )
    parts: list[Component] = [
        scanner,
        RugWatch(
            bus=bus,
            clock=clock,
            creator_of=scanner.creator_of,
            creator_sell_pct=sc.rug_creator_sell_pct,
            liquidity_drop_pct=sc.rug_liquidity_drop_pct,
            window_s=sc.rug_window_s,
        ),
    ]
    if sc.pumpportal_url:
        from quantbot.launchfeed import PumpPortalFeed
        from quantbot.retry import Backoff

        reconnect = Backoff(base=0.5, cap=sc.pumpportal_reconnect_max_s)
        parts.append(PumpPortalFeed(bus=bus, url=sc.pumpportal_url, clock=clock, reconnect=reconnect))
    return parts


def open_store(config: Config) -> Store:
    """The configured store (not yet opened)."""
    sc = config.store
    if sc.backend == "postgres":
        password = sc.postgres_password.reveal() if sc.postgres_password else None
        pg = PostgresStore(sc.postgres_dsn, password=password)
        pg.retention = msgspec.structs.asdict(sc.retention)
        return pg
    path = Path(sc.sqlite_path)
    store = SqliteStore(path if path.is_absolute() else Path(config.daemon.data_dir) / path)
    store.retention = msgspec.structs.asdict(sc.retention)
    return store


def build_aptos_watcher(
    config: Config, *, bus: EventBus, store: Store, clock: Clock, recorder: Recorder | None = None
) -> AptosWatcher:
    """The Aptos watcher with its REST pool, decimals cache and the AptosParser (imported here, on demand)."""
    from quantbot.chains.aptos.client import AptosRest
    from quantbot.chains.aptos.decimals import DecimalsCache
    from quantbot.chains.aptos.parser import AptosParser  # type: ignore[import-not-found, unused-ignore]  # parser branch
    from quantbot.chains.aptos.watcher import AptosWatcher
    from quantbot.retry import Backoff

    ac = config.aptos
    rest = AptosRest(
        nodes=ac.nodes,
        clock=clock,
        timeout=ac.request_timeout,
        backoff=Backoff(base=ac.retry_base, cap=ac.retry_cap),
        attempts=ac.attempts,
        api_key=ac.api_key.reveal() if ac.api_key else None,
    )
    decimals = DecimalsCache(rest=rest)
    parser: Any = AptosParser(decimals=decimals.get)
    if recorder is not None:
        parser = RawTap(parser, chain="aptos", recorder=recorder)
    return AptosWatcher(
        bus=bus,
        store=store,
        parser=parser,
        rest=rest,
        clock=clock,
        decimals=decimals,
        source=ac.source,
        wallets=ac.wallets,
        poll_interval=ac.poll_interval,
        page_size=ac.page_size,
        start_version=ac.start_version,
        error_backoff=Backoff(base=ac.retry_base, cap=ac.retry_cap),
    )


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
        sources: Callable[[Daemon], Sequence[Component]] | None = None,
    ) -> None:
        self.loaded = loaded
        self.sources = sources
        """Replay: builds the event sources that stand in for the chain watchers (which are then not built)."""
        self.recorder: Recorder | None = None
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
        self.scanner: Component | None = None
        self.started_components: set[str] = set()
        self.controller: Controller | None = None
        self.http: HttpServer | None = None
        self.jobs: Jobs | None = None
        """Scheduled jobs; components built in `run` may register theirs with `self.jobs.add(...)`."""
        self.aptos: AptosWatcher | None = None
        self.prices: PriceBook | None = None
        self.whales: WhaleTracker | None = None
        self.writer: WriteBehind | None = None
        self.sizer: Sizer | None = None
        self.cluster: ClusterTransport | None = None
        self.mqtt: MqttBridge | None = None
        self.lease: TradingLease | None = None
        self._stop_requested = False
        self._exit_status: int | None = None
        """Set by a part that must stop the daemon with a given status (the trading lease lost)."""

    @property
    def config(self) -> Config:
        return self.loaded.config

    # --- control ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop_requested = True
        self._commands.put_nowait("stop")

    def _lease_lost(self) -> None:
        if self.router is not None:
            self.router.fence("this daemon lost the store's trading lease")
        if self._stop_requested:
            return  # stopping anyway (the host going down takes the database with it, say): a clean stop is 0
        self._exit_status = EX_TEMPFAIL  # systemd may start us again; we then need the lease back
        self.request_stop()

    def request_reload(self) -> None:
        self._commands.put_nowait("reload")

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.config
        lock = DataDirLock(Path(cfg.daemon.data_dir))
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            log.error("daemon.already_running", detail=str(exc))
            return EX_TEMPFAIL
        try:
            return await self._run()
        finally:
            lock.release()

    async def _run(self) -> int:
        cfg = self.config
        self.sd.status("starting")
        log.info("daemon.starting", version=__version__, mode=cfg.mode, instance=cfg.instance, pid=os.getpid())
        bus = EventBus(
            clock=self.clock,
            origin=cfg.instance,
            queue_size=cfg.bus.queue_size,
            handler_timeout=cfg.bus.handler_timeout,
            max_failures=cfg.bus.max_consecutive_failures,
            redact=self.redactor.scrub,  # a bound method: secrets added on reload are scrubbed too
        )
        self.bus = bus
        self.store = open_store(cfg)
        if cfg.record.path and self.sources is None:
            rc = cfg.record
            self.recorder = Recorder(
                bus=bus,
                clock=self.clock,
                path=Path(rc.path),
                flush_interval_s=rc.flush_interval_s,
                max_buffer_lines=rc.max_buffer_lines,
                raw=rc.raw,
                instance=cfg.instance,
            )
        # Chain watchers are built first but start last (every subscriber exists before the first chain event).
        live_chains = self.sources is None
        solana = (
            build_solana(cfg, bus=bus, store=self.store, clock=self.clock, recorder=self.recorder)
            if cfg.solana.enabled and live_chains
            else None
        )
        # Intelligence: started after the store, before the strategies that act on its events. The Solana
        # watcher subscribes to the accounts the PriceBook prices held tokens from.
        account_watcher: AccountWatcher | None = solana[1] if solana else None
        self.writer = WriteBehind(store=self.store, clock=self.clock, interval=cfg.store.flush_interval_s)
        self.prices = PriceBook(bus=bus, clock=self.clock, config=cfg.prices, watcher=account_watcher, store=self.store)
        self.whales = WhaleTracker(
            bus=bus, clock=self.clock, config=cfg.whales, prices=self.prices, store=self.store, writer=self.writer
        )
        executors = {
            p.id: p
            for p in build_plugins(self.loaded, self.catalog, "executors", self.clock, self.prices)
            if isinstance(p, Executor)
        }
        for chain, key in (("solana", cfg.wallet.solana_keypair), ("aptos", cfg.wallet.aptos_private_key)):
            for name in getattr(cfg.orders, chain):
                if name in executors:
                    executors[name].use_wallet_key(key)
        executor_host = PluginHost(
            bus=bus,
            section="executors",
            plugins=list(executors.values()),
            overflow=Overflow.BLOCK,
            # An executor that did not start (its sent log unread, its wallet not loaded) must neither trade nor
            # reconcile: it would call every order it cannot see in its log never sent. Its orders stay open.
            on_start_failed=lambda p: _forget(executors, p.id),
        )
        sealer = Sealer()
        self.portfolio = Portfolio(
            store=self.store,
            clock=self.clock,
            bus=bus,
            executors=executors,
            routes=cfg.orders,
            prices=self.prices,
            config=cfg.portfolio,
            writer=self.writer,
        )
        self.sizer = Sizer(config=cfg.sizing, store=self.store, equity=self.portfolio.equity_native)
        self.controller = Controller(
            daemon=self, store=self.store, bus=bus, portfolio=self.portfolio, clock=self.clock, redactor=self.redactor
        )
        ops: list[Component] = []
        if cfg.jobs.enabled:
            self.jobs = Jobs(
                config=cfg.jobs,
                clock=self.clock,
                store=self.store,
                portfolio=self.portfolio,
                components=lambda: self.components,
                data_dir=Path(cfg.daemon.data_dir),
            )
        if cfg.http.enabled:
            metrics = Metrics(
                bus=bus,
                store=self.store,
                portfolio=self.portfolio,
                components=lambda: self.components,
                extra=[self.jobs.collect] if self.jobs else [],
            )
            self.http = HttpServer(config=cfg.http, controller=self.controller, metrics=metrics)
            ops.append(self.http)
        self.router = OrderRouter(
            bus=bus,
            store=self.store,
            portfolio=self.portfolio,
            executors=executors,
            sealer=sealer,
            clock=self.clock,
            mode=cfg.mode,
            execute_timeout=cfg.orders.execute_timeout,
            redactor=self.redactor,
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
            mode=cfg.mode,
            prices=self.prices,
            sizer=self.sizer,
        )
        self.exits = ExitManager(bus=bus, store=self.store, portfolio=self.portfolio, rules=cfg.exits, clock=self.clock)
        self.filters = FilterStage(
            bus=bus,
            filters=[
                p
                for p in build_plugins(self.loaded, self.catalog, "filters", self.clock, self.prices)
                if isinstance(p, Filter)
            ],
            timeout=cfg.scanner.filter_timeout_s,
            evaluate_all=cfg.scanner.evaluate_all,
        )
        scanner_parts = (
            build_scanner(
                cfg,
                bus=bus,
                filters=self.filters,
                clock=self.clock,
                store=self.store,
                writer=self.writer,
                rpc=solana[0] if solana else None,
                prices=self.prices,
            )
            if cfg.scanner.enabled
            else []
        )
        self.scanner = next((c for c in scanner_parts if c.name == "scanner"), None)
        self.strategies = PluginHost(
            bus=bus,
            section="strategies",
            plugins=build_plugins(self.loaded, self.catalog, "strategies", self.clock, self.prices),
            overflow=Overflow.BLOCK,
        )
        self.notifiers = PluginHost(
            bus=bus,
            section="notifiers",
            plugins=build_plugins(self.loaded, self.catalog, "notifiers", self.clock, self.prices),
            overflow=Overflow.DROP_OLDEST,
        )
        self.lease = TradingLease(
            store=self.store,
            holder=holder_name(cfg.instance),
            on_lost=self._lease_lost,
            check_interval_s=cfg.store.lease_check_s,
        )
        # The risk engine subscribes to order results before the router reconciles, so budgets
        # reserved by orders that turn out to have failed are given back.
        # The portfolio starts after the executors: it reads the real balances through them.
        # Nothing that trades starts before the store's trading lease is ours (one trading daemon per store).
        self.components = [
            self.store,
            self.lease,
            self.writer,
            *ops,
            self.prices,
            self.whales,
            executor_host,
            self.portfolio,
            self.risk,
            self.router,
            self.exits,
            self.filters,
            *[c for c in scanner_parts if c.name != "pumpportal"],
            self.strategies,
            self.notifiers,
            *([self.jobs] if self.jobs else []),
        ]
        if self.recorder is not None:
            self.components.append(self.recorder)
        if self.jobs is not None:
            self._report_jobs(bus)
        self._wire_ops(
            bus,
            trading=[
                self.lease,
                self.portfolio,
                executor_host,
                self.risk,
                self.router,
                self.exits,
                self.filters,
                *scanner_parts,
                self.strategies,
            ],
        )
        # Watchers start last (every subscriber, the cluster transport included, exists before the first chain
        # event) and stop first. In a multi-host cluster only the watchers role runs them; a trading instance
        # still runs the Solana RPC pool when its scanner enriches launches through it. A replay brings its own
        # sources instead of the watchers.
        if role_runs(cfg.cluster.role, "watchers"):
            if solana:
                self.components += solana
            if live_chains:
                self.components += [c for c in scanner_parts if c.name == "pumpportal"]
            if cfg.aptos.enabled and live_chains:
                self.aptos = build_aptos_watcher(
                    cfg, bus=bus, store=self.store, clock=self.clock, recorder=self.recorder
                )
                self.components.append(self.aptos)
        else:
            # Whale signals arrive from the watchers instance; a second tracker here would repeat them.
            self.components.remove(self.whales)
            if solana and scanner_parts:
                self.components.insert(self.components.index(self.portfolio), solana[0])
        if self.sources is not None:
            self.components += self.sources(self)

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
                        self.started_components.add(c.name)
                        log.info("component.started", name=c.name)
                    self._ready()
                    ticker = loop.create_task(self._tick(bus), name="quantbot[daemon].tick")
                    await self._serve()
                except AlreadyRunning as exc:  # the store's trading lease is another daemon's
                    log.error("daemon.already_running", detail=str(exc))
                    self._exit_status = EX_TEMPFAIL
                except Exception as exc:
                    failed = True
                    log.critical("daemon.failed", exc_info=exc)
                if ticker is not None:
                    ticker.cancel()
                status = await self._shutdown(bus, started)
                if self._exit_status is not None:
                    return self._exit_status
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
            assert self.controller is not None  # noqa: S101  (built before the ops components)
            self.mqtt = MqttBridge(
                bus=bus, config=cfg.mqtt, instance=cfg.instance, control=self.controller, clock=self.clock
            )
            self.components.append(self.mqtt)

    def _report_jobs(self, bus: EventBus) -> None:
        """Watcher lag and (where trading runs) the daily report reach the notifiers through scheduled jobs."""
        assert self.jobs is not None and self.portfolio is not None and self.store is not None  # noqa: S101
        lag = LagWatch(bus=bus, components=lambda: self.components, max_lag_s=lambda: self.config.http.max_lag_s)
        self.jobs.add("watcher_lag", lag.check)
        if role_runs(self.config.cluster.role, "trading"):
            reporter = DailyReporter(bus=bus, store=self.store, portfolio=self.portfolio, clock=self.clock)
            self.components.insert(self.components.index(self.jobs), reporter)
            self.jobs.add("daily_report", reporter.run)

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
        # Sources (chain watchers, launch feeds) stop first: a drain cannot finish while they still publish.
        sources = [c for c in started if getattr(c, "is_source", False)]
        clean = await self._stop_each(reversed(sources), deadline, timeout)
        drained = await bus.drain(max(deadline - loop_time(), STOP_GRACE_S))
        if not drained:
            log.error("daemon.shutdown_timeout", timeout_s=timeout, stage="drain", pending=bus.queue_depths())
        rest = [c for c in started if c not in sources]
        clean = await self._stop_each(reversed(rest), deadline, timeout) and clean and drained
        await bus.aclose()
        log.info("daemon.stopped", clean=clean, bus=bus.stats()["published"])
        return 0 if clean else 1

    async def _stop_each(self, components: Iterable[Component], deadline: float, bound_s: float) -> bool:
        """Stop in the given order; each gets what is left of the budget, but at least a short grace, so one
        that hangs cannot keep the next (ultimately the store) from closing."""
        clean = True
        for c in components:
            budget = max(deadline - loop_time(), STOP_GRACE_S)
            try:
                async with asyncio.timeout(budget):
                    await c.stop()
                self.started_components.discard(c.name)
                log.info("component.stopped", name=c.name)
            except TimeoutError:
                clean = False
                log.error("daemon.shutdown_timeout", timeout_s=bound_s, stage=c.name)
            except Exception as exc:
                clean = False
                log.error("component.stop_failed", name=c.name, exc_info=exc)
        return clean

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
        if "sizing" in live and self.sizer is not None:
            self.sizer.set_config(new.config.sizing)
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
                    PluginEnv(
                        clock=self.clock,
                        data_dir=Path(new.config.daemon.data_dir) / "filters" / spec.key,
                        prices=self.prices,
                    )
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
