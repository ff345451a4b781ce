"""Shared fixtures: config files, a third-party plugin distribution, and a daemon subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from tests.mqttbroker import Broker, make_broker, need_private

if TYPE_CHECKING:
    from quantbot.daemon import Daemon
    from quantbot.secrets import Redactor

HERE = Path(__file__).parent
REPO = HERE.parent

SHARED_FIXTURES = Path(os.environ.get("QUANTBOT_FIXTURES", REPO.parent / "shared" / "fixtures"))
"""Recorded mainnet data (../shared/fixtures, see each SOURCES.md); never copied into the project."""

TEST_DIST = "qb-testplugins"
TEST_DIST_VERSION = "1.2.3"


def write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    if mode is not None:
        path.chmod(mode)
    return path


async def start_daemon(
    cfg: Path, *, environ: dict[str, str] | None = None, redactor: Redactor | None = None, start_within: float = 10
) -> tuple[Daemon, asyncio.Task[int]]:
    """The daemon `cfg` configures, built as `quantbot run` builds it (wall clock) and run in this event loop:
    returned once every component has started, with the task running it (its exit status)."""
    from quantbot.clock import WallClock
    from quantbot.config import load_config
    from quantbot.daemon import Daemon
    from quantbot.plugins import PluginCatalog
    from quantbot.secrets import Redactor

    environ = {} if environ is None else environ
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ=environ, plugins=catalog)
    daemon = Daemon(
        loaded=loaded,
        config_paths=[str(cfg)],
        catalog=catalog,
        redactor=Redactor() if redactor is None else redactor,
        clock=WallClock(),
        environ=environ,
    )
    run = asyncio.create_task(daemon.run())
    async with asyncio.timeout(start_within):
        await daemon.started.wait()
    return daemon, run


def shared_fixture_dir(name: str) -> Path:
    """`../shared/fixtures/NAME`; skip when absent, except under CI=true where absence fails the run."""
    path = SHARED_FIXTURES / name
    if not path.is_dir():
        message = f"recorded fixtures not found at {path} (set QUANTBOT_FIXTURES to the shared/fixtures folder)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def solana_fixtures() -> Path:
    return shared_fixture_dir("solana")


@pytest.fixture(scope="session")
def aptos_fixtures() -> Path:
    return shared_fixture_dir("aptos")


@pytest.fixture(scope="session")
def aptos_launch_fixtures() -> Path:
    return shared_fixture_dir("aptos-launch")


def pip_install_target(source: Path, site: Path) -> Path:
    """Install a plugin distribution with pip, offline, into its own site directory (as a user would install it)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


@pytest.fixture(scope="session")
def installed_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third-party plugin distribution installed by pip (offline) into its own site directory."""
    work = tmp_path_factory.mktemp("plugin-dist")
    source = shutil.copytree(HERE / "plugin_fixtures" / "qb-testplugins", work / "src")
    return pip_install_target(source, work / "site")


@pytest.fixture
def plugin_site(installed_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the installed third-party distribution on the path, for this process and child processes."""
    site = installed_plugin_site
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return site


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTBOT__", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m quantbot ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "quantbot", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


class DaemonProcess:
    """`quantbot run` in a child process, its JSON log lines collected as they arrive."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quantbot", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or cli_env(),
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._arrived = threading.Condition()
        self._claimed: set[int] = set()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err.extend(self.proc.stderr)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._arrived:
                self.raw.append(line)
                try:
                    self.lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
                self._arrived.notify_all()

    def wait_for(self, event: str, timeout: float = 20.0, **match: Any) -> dict[str, Any]:
        """The first not yet claimed log line with this `event` (and matching keys); waits for it."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for i, record in enumerate(self.lines):
                    if i in self._claimed:
                        continue
                    if record.get("event") == event and all(record.get(k) == v for k, v in match.items()):
                        self._claimed.add(i)
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {event!r} log line within {timeout}s; stdout:\n{''.join(self.raw)}\n"
                        f"stderr:\n{''.join(self.err)}"
                    )
                self._arrived.wait(remaining)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Collects started daemons and kills any still running when the test ends."""
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


@pytest.fixture
async def local_solana() -> Any:
    """A local Solana JSON-RPC + WebSocket endpoint (quantbot.localnet.solana) on a free port."""
    from quantbot.localnet.solana import LocalSolana

    async with LocalSolana() as node:
        yield node


@pytest.fixture
async def aptos_node() -> Any:
    """A local Aptos fullnode REST API v1 endpoint (quantbot.localnet.aptos) on a free 127.0.0.1 port."""
    from quantbot.localnet.aptos import AptosLocalNode

    async with AptosLocalNode() as node:
        yield node


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto broker shared by the session (private, with users and an ACL, when installed)."""
    broker = make_broker(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
def own_mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own, which it may stop and start again."""
    broker = make_broker(tmp_path / "mosquitto")
    need_private(broker)
    yield broker
    broker.stop()


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Run `app` on 127.0.0.1 on a free port: (the runner, to `cleanup()` after; the port)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
