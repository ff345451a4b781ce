"""The third-party template (plugins/example-strategy) installs with pip and runs through the entry-point path."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, DaemonProcess, cli_env, pip_install_target, run_cli, write

TEMPLATE = REPO / "plugins" / "example-strategy"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("example-dist")
    source = shutil.copytree(TEMPLATE, work / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    return pip_install_target(source, work / "site")


def test_the_template_declares_its_entry_point_in_its_own_distribution(example_site: Path) -> None:
    (dist_info,) = example_site.glob("quantbot_example_strategy-*.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "[quantbot.strategies]" in entry_points
    assert "dip_buyer = quantbot_example_strategy:DipBuyer" in entry_points


def test_quantbot_plugins_lists_the_installed_template(example_site: Path) -> None:
    r = run_cli("plugins", "--json", env=cli_env(PYTHONPATH=str(example_site)))
    assert r.returncode == 0, r.stderr
    listed = {p["name"]: p for p in json.loads(r.stdout)["quantbot.strategies"]}
    assert listed["dip_buyer"]["distribution"] == "quantbot-example-strategy"
    assert listed["dip_buyer"]["version"] == "0.1.0"


def test_the_templates_own_tests_pass_against_the_installed_copy(example_site: Path, tmp_path: Path) -> None:
    tests = shutil.copytree(TEMPLATE / "tests", tmp_path / "tests")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", str(tests)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(PYTHONPATH=str(example_site)),
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert " passed" in r.stdout


def test_a_bad_template_parameter_is_a_config_error_naming_the_key(example_site: Path, tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml",
        """
        [[strategies]]
        use = "dip_buyer"
        dip_pct = 150
        """,
    )
    r = run_cli("check-config", "-c", str(cfg), env=cli_env(PYTHONPATH=str(example_site)))
    assert r.returncode == 78
    assert "strategies[0]" in r.stderr and "dip_pct must be between 0 and 100" in r.stderr


@pytest.mark.subprocess
def test_the_daemon_runs_the_template_and_reloads_its_parameters(
    example_site: Path, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    body = """
        [daemon]
        data_dir = "{data}"
        [[strategies]]
        use = "dip_buyer"
        id = "dips"
        tokens = ["Dip1111111111111111111111111111111111111111"]
        dip_pct = {dip}
        """
    cfg = write(tmp_path / "q.toml", body.format(data=tmp_path / "data", dip=20))
    d = DaemonProcess("-c", str(cfg), env=cli_env(PYTHONPATH=str(example_site)))
    daemons.append(d)
    ready = d.wait_for("daemon.ready")
    assert "strategies=1" in ready["status"]
    write(tmp_path / "q.toml", body.format(data=tmp_path / "data", dip=35))
    d.signal(signal.SIGHUP)
    d.wait_for("plugin.reconfigured", plugin="strategies:dips")
    reloaded = d.wait_for("config.reloaded")
    assert reloaded["effective"]["strategies"]["dips"]["dip_pct"] == "35"
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
