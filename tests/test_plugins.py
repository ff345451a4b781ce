"""Plugin discovery from installed distributions, and `quantbot plugins`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from quantbot.plugins import PluginCatalog, PluginLoadError
from tests.conftest import TEST_DIST, TEST_DIST_VERSION, cli_env, run_cli

GROUPS = ["quantbot.filters", "quantbot.strategies", "quantbot.executors", "quantbot.notifiers"]


def test_first_party_plugins_are_found_through_their_entry_points() -> None:
    catalog = PluginCatalog.discover()
    blocklist = catalog.get("filters", "blocklist")
    assert (blocklist.distribution, blocklist.value) == ("quantbot", "quantbot_filters.blocklist:BlocklistFilter")
    assert catalog.get("notifiers", "log").distribution == "quantbot"


def test_plugins_lists_every_group_including_empty_ones() -> None:
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for group in GROUPS:
        assert f"{group}:\n" in out
    assert "quantbot.strategies:\n  copy_trade  (quantbot " in out
    assert "  paper  (quantbot " in out
    assert "  blocklist  (quantbot " in out
    assert "    name_patterns: array of string, default [] - regexes;" in out
    assert '    level: one of "debug", "info", "warning", default "info" - log level' in out


def test_plugins_shows_an_installed_third_party_distribution(plugin_site: Path) -> None:
    result = run_cli("plugins", "--json", env=cli_env(PYTHONPATH=str(plugin_site)))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == GROUPS
    strategy = next(r for r in report["quantbot.strategies"] if r["name"] == "buy_accepted")
    assert (strategy["name"], strategy["distribution"], strategy["version"]) == (
        "buy_accepted",
        TEST_DIST,
        TEST_DIST_VERSION,
    )
    props = strategy["schema"]["$defs"]["BuyConfig"]["properties"]
    assert props["amount"] == {"type": "integer", "default": 100000000}
    broken = next(r for r in report["quantbot.filters"] if r["name"] == "broken")
    assert "failed to import: ModuleNotFoundError" in broken["error"]
    exploding = next(r for r in report["quantbot.filters"] if r["name"] == "exploding")
    secret = exploding["schema"]["$defs"]["ExplodingConfig"]["properties"]["api_token"]["anyOf"][0]
    assert secret["description"] == "secret reference, one of: env, file, credential"


def test_broken_plugin_is_reported_not_raised_by_the_listing(plugin_site: Path) -> None:
    result = run_cli("plugins", env=cli_env(PYTHONPATH=str(plugin_site)))
    assert result.returncode == 0
    assert f"  broken  ({TEST_DIST} {TEST_DIST_VERSION})\n    ERROR: plugin 'broken'" in result.stdout


@pytest.mark.usefixtures("plugin_site")
def test_loading_checks_the_base_class() -> None:
    catalog = PluginCatalog.discover()
    with pytest.raises(PluginLoadError, match="failed to import"):
        catalog.get("filters", "broken").load()
    assert catalog.get("strategies", "buy_accepted").load().__name__ == "BuyAcceptedStrategy"


def test_console_script_and_module_entry_both_work() -> None:
    script = Path(sys.executable).parent / "quantbot"
    assert script.exists(), "pip install gives a `quantbot` command"
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("run", "check-config", "plugins"):
        assert command in result.stdout
